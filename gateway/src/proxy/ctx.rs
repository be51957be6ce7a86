//! What a request keeps between the proxy's hooks: the table snapshot it started with (kept for
//! its whole life, retries included), the decision made on it, and its attempts.

use super::head_wait::HeadWait;
use crate::contain::{Explanation, RetryBudget, StreamKind};
use crate::health::registry::{GroupGuard, TargetGuard};
use crate::lifecycle::InFlight;
use crate::routing::ActiveTable;
use crate::routing::{Group, GroupId, Members, Reason, RetryReason};
use crate::telemetry::TableMetrics;
use crate::telemetry::{GrpcStatus, RequestTrace};
use dyegate_plugins::ClientAddr;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct RequestCtx {
    /// Counts this request as in flight until the context is dropped.
    pub(super) _in_flight: InFlight,
    pub(super) started: Instant,
    /// The active table (and its version) when the request started.
    pub(super) table: Option<Arc<ActiveTable<TableMetrics>>>,
    pub(super) outcome: CtxOutcome,
    /// The decided group's targets when it has DNS names: the set of the moment of the
    /// decision, kept for every attempt (`None` for a group of fixed addresses: the table has
    /// them).
    pub(super) members: Option<Arc<Members>>,
    /// The targets of the attempts made, in order.
    pub(super) tried: Vec<SocketAddr>,
    /// The target of the current (last) attempt.
    pub(super) target: Option<SocketAddr>,
    /// Retries made under the route's `retries` (not Pingora's retries of a stale pooled
    /// connection).
    pub(super) retried: usize,
    /// The gateway span, started first thing in `request_filter`.
    pub(super) trace: Option<RequestTrace>,
    /// The client asked for `x-dyegate-decision` and may see it.
    pub(super) debug: bool,
    /// For `x-dyegate-decision`: the conditions that held and the nearest miss (debug
    /// requests only).
    pub(super) why: Option<Box<Why>>,
    /// The tag to set upstream when it came from a cookie or the query and names none of the
    /// route's tags (the decision holds the others by position).
    pub(super) set_tag: Option<Box<str>>,
    /// The connection's peer: the TCP peer, or the source its PROXY protocol header named.
    pub(super) peer: Option<IpAddr>,
    /// The request's one client address (the peer, or behind trusted proxies the address they
    /// forwarded): what sticky `client_ip`, rate limits, trusted sources and the logs use.
    pub(super) client: Option<ClientAddr>,
    /// Counts the request in flight to its group (the circuit breaker).
    pub(super) group_load: Option<GroupGuard>,
    /// Counts the current attempt in flight to its target.
    pub(super) target_load: Option<TargetGuard>,
    pub(super) budget: Option<Arc<RetryBudget>>,
    /// A retry decided on an upstream answer's status (in `upstream_response_filter`), for
    /// `error_while_proxy` to carry out.
    pub(super) status_retry: Option<RetryReason>,
    /// The `grpc-status` the upstream answered (trailers, or the head of a trailers-only
    /// answer); read only for groups spoken to over HTTP/2.
    pub(super) grpc_status: Option<GrpcStatus>,
    /// The current attempt's head was below 500: whether the attempt succeeded, for outlier
    /// detection, is known when its answer has ended (see `ending.rs`).
    pub(super) awaiting_end: bool,
    /// The request failed upstream after the client had the answer's head: the answer broke
    /// off (a reset, a read timeout mid-body, a reset HTTP/2 stream).
    pub(super) broken_after_head: bool,
    /// Whether the current attempt is a stream (its reads bounded by `stream_idle_ms`).
    pub(super) stream: StreamKind,
    /// `read_ms` for the head of an upgrade, armed once connected (`head_wait.rs`).
    pub(super) head_wait: Option<Duration>,
    pub(super) head_timer: Option<HeadWait>,
    /// The stream was closed after `stream_idle_ms` without a read: a normal end, neither an
    /// error nor the target's failure.
    pub(super) idle_closed: bool,
    /// The request's mirrored copies while they are built (`crate::mirror`).
    pub(super) mirror: Option<Box<crate::mirror::Pending>>,
    /// The real answer's side of the comparisons of its copies (`compare`).
    pub(super) mirror_primary: Option<Box<crate::mirror::Primary>>,
}

impl RequestCtx {
    pub(super) fn new(in_flight: InFlight) -> Self {
        RequestCtx {
            _in_flight: in_flight,
            started: Instant::now(),
            table: None,
            outcome: CtxOutcome::Undecided,
            members: None,
            tried: Vec::new(),
            target: None,
            retried: 0,
            trace: None,
            debug: false,
            why: None,
            set_tag: None,
            peer: None,
            client: None,
            group_load: None,
            target_load: None,
            budget: None,
            status_retry: None,
            grpc_status: None,
            awaiting_end: false,
            broken_after_head: false,
            stream: StreamKind::None,
            head_wait: None,
            head_timer: None,
            idle_closed: false,
            mirror: None,
            mirror_primary: None,
        }
    }

    /// The routed decision, with the table it was made on.
    pub(super) fn routed(&self) -> Option<(&ActiveTable<TableMetrics>, Routed)> {
        match (&self.table, self.outcome) {
            (Some(t), CtxOutcome::Routed(d)) => Some((t, d)),
            _ => None,
        }
    }

    /// The targets of `group`, the decided group, as this request sees them.
    pub(super) fn members<'a>(&'a self, group: &'a Group) -> Option<&'a Members> {
        self.members.as_deref().or_else(|| group.fixed_members())
    }

    /// Whether the decided group is spoken to over HTTP/2 (its requests get `grpc_status`).
    pub(super) fn upstream_h2(&self) -> bool {
        self.routed().is_some_and(|(active, d)| {
            (active.table.group(d.group)).is_some_and(|g| g.transport.protocol.is_h2())
        })
    }

    /// The request's `grpc_status` label: `None` for groups spoken to over HTTP/1.
    pub(super) fn grpc_label(&self) -> Option<GrpcStatus> {
        self.upstream_h2()
            .then(|| self.grpc_status.unwrap_or(GrpcStatus::NONE))
    }

    /// The request's tag as configured on its route, if it is one of the route's tags.
    pub(super) fn configured_tag<'t>(
        &self,
        active: &'t ActiveTable<TableMetrics>,
        d: &Routed,
    ) -> Option<&'t str> {
        match d.tag {
            TagRef::Configured(i) => active
                .table
                .route(d.route_id)
                .and_then(|r| r.dye.tags.get(i))
                .map(|(t, _)| t.as_ref()),
            _ => None,
        }
    }

    /// The `x-dyegate-decision` value, when the client asked for it and may see it.
    pub(super) fn explanation(&self) -> Option<String> {
        if !self.debug {
            return None;
        }
        let active = self.table.as_deref()?;
        let mut e = Explanation {
            version: active.version,
            target: self.target,
            tries: self.tried.len(),
            ..Default::default()
        };
        match self.outcome {
            CtxOutcome::Undecided => return None,
            CtxOutcome::NoRoute => e.reason = "no_route",
            CtxOutcome::Rejected { route_id } => {
                e.reason = "rejected";
                e.route = active.table.route(route_id).map(|r| r.name.as_ref());
            }
            CtxOutcome::Routed(d) => {
                e.reason = d.reason.as_str();
                e.route = active.table.route(d.route_id).map(|r| r.name.as_ref());
                e.group = active.table.group(d.group).map(|g| g.name.as_ref());
                e.tag = match d.tag {
                    TagRef::Unconfigured => Some(crate::telemetry::metrics::OTHER_TAG),
                    _ => self.configured_tag(active, &d),
                };
            }
        }
        if let Some(why) = &self.why {
            e.matched = &why.matched;
            e.miss = &why.miss;
        }
        Some(e.value())
    }
}

/// The parts of `x-dyegate-decision` that say why the route was taken (`routing::Explained`).
#[derive(Debug)]
pub(super) struct Why {
    pub matched: String,
    pub miss: String,
}

/// The decision, held by index into the table snapshot the ctx keeps alive.
#[derive(Debug, Clone, Copy)]
pub(super) enum CtxOutcome {
    Undecided,
    NoRoute,
    Rejected {
        route_id: usize,
    },
    /// A group was decided on; `reason` says whether the request goes to it or is answered
    /// 503 for it (`no_healthy_target`, `circuit_open`).
    Routed(Routed),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Routed {
    pub route_id: usize,
    pub group: GroupId,
    pub reason: Reason,
    pub tag: TagRef,
    pub action: Action,
}

impl Routed {
    /// Whether the request is answered by dyegate for its group instead of proxied.
    pub fn refused(&self) -> bool {
        matches!(self.reason, Reason::NoHealthyTarget | Reason::CircuitOpen)
    }
}

/// The request's tag: one of the route's configured tags (by position), another value (only
/// forwarded), or none.
#[derive(Debug, Clone, Copy)]
pub(super) enum TagRef {
    None,
    Configured(usize),
    Unconfigured,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
    Keep,
    Strip,
    Set,
}
