//! The Pingora `ProxyHttp` implementation: load the routing table once per request, ask it where
//! to go (with a read-only view of target health), and act. No routing logic lives here.
//!
//! - [`hooks`]: the `ProxyHttp` phase hooks, in the order Pingora calls them.
//! - [`ctx`]: what a request keeps between hooks.
//! - [`attempt`]: target choice per attempt, outlier reports, retries.
//! - [`answer`]: the answers dyegate writes itself.
//! - [`ending`]: how an answer ended (whole, or broken after its head), for metrics, gates and
//!   outlier detection.
//! - [`head_wait`]: `read_ms` for an upgrade's response head (its reads use `stream_idle_ms`).
//! - [`access`]: the access log record.
//! - [`limit`]: rate limits (429).
//! - [`redirect`]: `https_redirect` (308 to the HTTPS URL).
//! - [`forwarded`]: the request's one client address, and the forwarding headers upstream.

mod access;
mod answer;
mod attempt;
mod ctx;
mod ending;
mod error_body;
pub mod forwarded;
mod head_wait;
mod hooks;
mod hsts;
mod limit;
pub mod live;
mod redirect;

pub use ctx::RequestCtx;

use crate::contain::{timeout_kind, RetryBudgets, DECISION_HEADER};
use crate::health::HealthRegistry;
use crate::lifecycle::Lifecycle;
use crate::mirror::{MirrorMetrics, Pending, Pool};
use crate::routing::{ActiveTable, AddressBook, SharedTable};
use crate::routing::{Addresses, Outcome, Parsed, Reason, RequestInfo, TagAction};
use crate::telemetry::failure_log::Verdict;
use crate::telemetry::{AccessLog, ContainmentMetrics, TableMetrics};
use crate::telemetry::{FailureLog, Tracing};
use answer::Answer;
use ctx::{Action, CtxOutcome, Routed, TagRef};
use live::SharedLive;
use log::warn;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::Duration;

/// The proxy service logic. Holds the handle of the current table and the state that outlives
/// tables (target health, retry budgets); see [`RequestCtx`] for what a request keeps.
#[derive(Clone)]
pub struct DyegateProxy {
    table: SharedTable<TableMetrics>,
    lifecycle: Arc<Lifecycle>,
    access_log: Option<AccessLog>,
    connect_timeout: Duration,
    tracing: Tracing,
    /// Counters of timeouts, retries and the like (shared with the metrics endpoint).
    failures: Arc<ContainmentMetrics>,
    /// Per-target health and per-group load (shared with the health checker and admin API).
    health: Arc<HealthRegistry>,
    /// The addresses of the groups' DNS names (written by the DNS service).
    addresses: Arc<AddressBook>,
    budgets: Arc<RetryBudgets>,
    /// The port `https_redirect` sends clients to (443: left out of the URL).
    https_port: u16,
    /// gateway.yaml's settings a SIGHUP can change (`server_header`, `forwarded`,
    /// `debug.trusted_sources`), read once per request.
    live: SharedLive,
    /// Upstream failures in the log, a few lines per target every few seconds at most.
    failure_log: Arc<FailureLog>,
    /// Where mirrored copies are counted, and the connections they go on; `None`: routes'
    /// `mirror` entries send nothing.
    mirrors: Option<(MirrorMetrics, Arc<Pool>)>,
}

impl DyegateProxy {
    pub fn new(
        table: SharedTable<TableMetrics>,
        lifecycle: Arc<Lifecycle>,
        access_log: Option<AccessLog>,
        connect_timeout: Duration,
    ) -> Self {
        let failures: Arc<ContainmentMetrics> = Arc::default();
        DyegateProxy {
            table,
            lifecycle,
            access_log,
            connect_timeout,
            tracing: Tracing::propagate_only(),
            health: Arc::new(HealthRegistry::new(failures.clone())),
            addresses: Arc::default(),
            failures,
            budgets: Arc::default(),
            https_port: 443,
            live: Arc::default(),
            failure_log: Arc::default(),
            mirrors: None,
        }
    }

    /// Where upstream failures are bounded before the log (flushed by its background service).
    pub fn with_failure_log(mut self, failure_log: Arc<FailureLog>) -> Self {
        self.failure_log = failure_log;
        self
    }

    /// Logs a failure of upstream `target` (`line` is built only when it is logged), bounded
    /// per target by [`FailureLog`].
    fn log_upstream_failure(
        &self,
        target: Option<std::net::SocketAddr>,
        line: impl FnOnce() -> String,
    ) {
        let Some(target) = target else {
            warn!("{}", line());
            return;
        };
        match self.failure_log.failure(target, std::time::Instant::now()) {
            Verdict::Suppress => {}
            Verdict::Log { summary } => {
                if let Some(s) = summary {
                    warn!("{}", s.line());
                }
                warn!("{}", line());
            }
        }
    }

    /// gateway.yaml's live settings: `server_header`, `forwarded`, `debug.trusted_sources`.
    pub fn with_live(mut self, live: SharedLive) -> Self {
        self.live = live;
        self
    }

    /// Where `https_redirect` sends clients: the port of the HTTPS listener.
    pub fn with_https_port(mut self, port: u16) -> Self {
        self.https_port = port;
        self
    }

    /// Where mirrored copies (`routes[].mirror`) are counted; without it none is sent.
    pub fn with_mirror_metrics(mut self, metrics: MirrorMetrics) -> Self {
        self.mirrors = Some((metrics, Arc::default()));
        self
    }

    /// The mirrors' counts and last mismatches, for `GET /mirrors`.
    pub fn mirror_book(&self) -> Option<Arc<crate::mirror::Book>> {
        self.mirrors.as_ref().map(|(m, _)| m.book())
    }

    /// Where timeouts, retries and other failure handling are counted.
    pub fn with_failure_metrics(mut self, failures: Arc<ContainmentMetrics>) -> Self {
        self.failures = failures;
        self
    }

    /// The target health the decision reads and attempts report to.
    pub fn with_health(mut self, health: Arc<HealthRegistry>) -> Self {
        self.health = health;
        self
    }

    /// The addresses of the groups' DNS names the decision and the picks read.
    pub fn with_addresses(mut self, addresses: Arc<AddressBook>) -> Self {
        self.addresses = addresses;
        self
    }

    /// Replaces the default tracing (propagation only, new traces unsampled).
    pub fn with_tracing(mut self, tracing: Tracing) -> Self {
        self.tracing = tracing;
        self
    }

    /// The decision as the ctx keeps it: by index into the table.
    /// Decides where the request goes on `active` (its one table snapshot) and keeps the
    /// decision in `ctx`; for a debug request, also why (`x-dyegate-decision`). Synchronous:
    /// the parsed cookies and query live only here, never across an await.
    fn decide(
        &self,
        ctx: &mut RequestCtx,
        active: &ActiveTable<TableMetrics>,
        req: &pingora::http::RequestHeader,
        host: &str,
    ) {
        // Cookies and query parsed only if a route tried (or its tag sources) reads them.
        let parsed = Parsed::default();
        let info = RequestInfo {
            method: &req.method,
            host,
            path: req.uri.path(),
            query: req.uri.query(),
            headers: &req.headers,
            client: ctx.client.map(|c| c.ip),
            parsed: &parsed,
        };
        // The addresses of DNS names: one load for the decision and the request's targets (none
        // for a table without names).
        let loaded = active.table.has_names().then(|| self.addresses.load());
        let addresses = loaded.as_deref().unwrap_or(Addresses::none());
        let outcome = (active.table).decide_with(&info, &self.health.view(), addresses);
        if let Some(trace) = ctx.trace.as_mut() {
            trace.record_outcome(&active.table, active.version, &outcome);
        }
        ctx.outcome = Self::ctx_outcome(active, outcome);
        ctx.set_tag = tag_to_set(&outcome, &ctx.outcome);
        if let CtxOutcome::Routed(d) = ctx.outcome {
            // A group with DNS names: its targets of this moment, for every attempt.
            ctx.members =
                (active.table.group(d.group)).and_then(|g| g.members(addresses).into_shared());
        }
        if ctx.debug {
            // Why this route (and not an earlier one), by the explain code: debug requests only.
            let explained = (active.table).explain_with(&info, &self.health.view(), addresses);
            ctx.why = Some(Box::new(ctx::Why {
                matched: explained.matched(&active.table),
                miss: explained.miss(&active.table),
            }));
        }
    }

    fn ctx_outcome(active: &ActiveTable<TableMetrics>, outcome: Outcome<'_>) -> CtxOutcome {
        let table = &active.table;
        let tag_ref = |route_id: usize, tag: Option<&str>| match tag {
            None => TagRef::None,
            Some(t) => table
                .route(route_id)
                .and_then(|r| r.dye.tags.iter().position(|(x, _)| x.as_ref() == t))
                .map_or(TagRef::Unconfigured, TagRef::Configured),
        };
        match outcome {
            Outcome::NoRoute => CtxOutcome::NoRoute,
            Outcome::RejectedTag { route_id } => CtxOutcome::Rejected { route_id },
            Outcome::NoHealthyTarget {
                route_id,
                group,
                tag,
            } => CtxOutcome::Routed(Routed {
                route_id,
                group,
                reason: Reason::NoHealthyTarget,
                tag: tag_ref(route_id, tag),
                action: Action::Keep,
            }),
            Outcome::Routed(d) => CtxOutcome::Routed(Routed {
                route_id: d.route_id,
                group: d.group,
                reason: d.reason,
                tag: tag_ref(d.route_id, d.tag),
                action: match d.tag_action {
                    TagAction::Keep => Action::Keep,
                    TagAction::Strip => Action::Strip,
                    TagAction::Set(_) => Action::Set,
                },
            }),
        }
    }

    /// After the decision: the circuit breaker of the decided group, the route's retry budget,
    /// and the counts of decisions that did not go the usual way.
    fn admit(&self, ctx: &mut RequestCtx) {
        let (Some(active), CtxOutcome::Routed(mut d)) = (ctx.table.clone(), ctx.outcome) else {
            return;
        };
        let (Some(route), Some(group)) =
            (active.table.route(d.route_id), active.table.group(d.group))
        else {
            return;
        };
        if !d.refused() {
            match self.health.enter_group(group) {
                Some(guard) => ctx.group_load = Some(guard),
                None => {
                    d.reason = Reason::CircuitOpen;
                    self.failures.circuit_open(&group.name);
                }
            }
        }
        if matches!(
            d.reason,
            Reason::FallbackUnhealthy | Reason::NoHealthyTarget | Reason::CircuitOpen
        ) {
            self.failures
                .decision(&route.name, &group.name, d.reason.as_str());
        }
        if !d.refused() {
            let budget = self.budgets.route(&route.name);
            budget.request(self.budgets.now_sec());
            ctx.budget = Some(budget);
        }
        ctx.outcome = CtxOutcome::Routed(d);
    }

    /// After the decision: the copies of this request its route's `mirror` entries sample
    /// (never of a request dyegate answers itself, nor of an upgrade).
    fn admit_mirrors(&self, req: &pingora::http::RequestHeader, ctx: &mut RequestCtx) {
        let (Some((metrics, _)), Some(active)) = (&self.mirrors, ctx.table.clone()) else {
            return;
        };
        let CtxOutcome::Routed(d) = ctx.outcome else {
            return;
        };
        let Some(route) = active.table.routes().get(d.route_id) else {
            return;
        };
        if route.mirror.is_empty() || d.refused() || req.headers.contains_key(http::header::UPGRADE)
        {
            return;
        }
        let table = &active.table;
        let addresses = self.addresses.load();
        let health = self.health.view();
        let name = |g| {
            table
                .group(g)
                .map_or_else(|| "?".into(), |g| g.name.clone())
        };
        let target = |g| {
            let group = table.group(g)?;
            group.with_members(&addresses, |m| {
                m.pick(&health).and_then(|t| m.peer_of(t).cloned())
            })
        };
        ctx.mirror = Pending::admit(route, &req.method, metrics, name, target);
    }

    /// The request's body has ended: its copies leave, each from its own task; the real
    /// answer's side of their comparisons stays with the request.
    fn send_mirrors(&self, ctx: &mut RequestCtx) {
        let (Some((metrics, pool)), Some(pending)) = (&self.mirrors, ctx.mirror.take()) else {
            return;
        };
        let trace_id = ctx.trace.as_ref().map(|t| t.trace_id_hex());
        let (copies, primary) = pending.finish(metrics, ctx.started, trace_id);
        for mut copy in copies {
            copy.into_lane(self.tracing.baggage_key());
            tokio::spawn(crate::mirror::send(copy, pool.clone(), metrics.clone()));
        }
        ctx.mirror_primary = primary;
    }

    /// The 404 and 503 answers of the decision itself.
    async fn answer_decision(&self, session: &mut Session, ctx: &RequestCtx) -> Result<bool> {
        let mut headers = Vec::new();
        let (status, body) = match (ctx.outcome, ctx.table.as_deref()) {
            (CtxOutcome::NoRoute, _) => (404, "no route\n".to_string()),
            (CtxOutcome::Rejected { .. }, _) => (503, "unknown env tag\n".to_string()),
            (CtxOutcome::Routed(d), Some(active)) if d.refused() => {
                let group = active.table.group(d.group).map_or("?", |g| g.name.as_ref());
                if d.reason == Reason::CircuitOpen {
                    headers.push(("retry-after", "1".to_string()));
                    (503, format!("upstream group {group} is at max_in_flight\n"))
                } else if ctx.members.as_ref().is_some_and(|m| m.is_empty()) {
                    // Its DNS names have no address (not resolved yet, or never did).
                    (503, format!("no address for upstream group {group}: its DNS names have not resolved\n"))
                } else {
                    (
                        503,
                        format!("no healthy target in upstream group {group}\n"),
                    )
                }
            }
            _ => return Ok(false),
        };
        if let Some(value) = ctx.explanation() {
            headers.push((DECISION_HEADER, value));
        }
        self.answer(ctx, status, body, &headers).send(session).await
    }

    /// An answer of dyegate's own to the request of `ctx` (`server_header`, `traceresponse`,
    /// the trace id an error names).
    fn answer<'a>(
        &self,
        ctx: &RequestCtx,
        status: u16,
        body: String,
        headers: &'a [(&'static str, String)],
    ) -> Answer<'a> {
        Answer {
            status,
            body,
            draining: self.lifecycle.is_draining(),
            traceresponse: (ctx.trace.as_ref()).and_then(|t| self.tracing.traceresponse(t)),
            trace_id: ctx.trace.as_ref().map(|t| t.trace_id_hex()),
            server: self.live.load().server_header.clone(),
            hsts: self.live.load().hsts.clone(),
            headers,
        }
    }

    /// `https_redirect` on a plain-HTTP request: 308 to `location`, or 400 when the request
    /// names no host to send the client to.
    async fn answer_redirect(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        location: Option<String>,
    ) -> Result<bool> {
        match location {
            Some(location) => {
                let body = format!("see {location}\n");
                let headers = [("location", location)];
                self.answer(ctx, 308, body, &headers).send(session).await
            }
            None => {
                let body = "https_redirect: the request names no host to redirect to".into();
                self.answer(ctx, 400, body, &[]).send(session).await
            }
        }
    }

    /// Counts an attempt's upstream timeout under its route; a read timeout of a stream's
    /// reads (`stream`) is `stream_idle`.
    fn count_timeout(&self, ctx: &RequestCtx, e: &Error, stream: bool) {
        let kind = timeout_kind(e, stream);
        let (Some(kind), Some((active, d))) = (kind, ctx.routed()) else {
            return;
        };
        if let Some(route) = active.table.route(d.route_id) {
            self.failures.timeout(&route.name, kind);
        }
    }
}

/// The tag to keep for `upstream_request_filter` when the decision sets the tag header to a
/// value that is none of the route's tags (one from a cookie or the query).
fn tag_to_set(outcome: &Outcome<'_>, decided: &CtxOutcome) -> Option<Box<str>> {
    match (outcome, decided) {
        (
            Outcome::Routed(crate::routing::Decision {
                tag_action: TagAction::Set(t),
                ..
            }),
            CtxOutcome::Routed(Routed {
                tag: TagRef::Unconfigured,
                ..
            }),
        ) => Some((*t).into()),
        _ => None,
    }
}
