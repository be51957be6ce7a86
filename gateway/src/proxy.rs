//! The Pingora `ProxyHttp` implementation: load the routing table once per request, ask it where
//! to go, and act. No routing logic lives here.

use crate::contain::{attempt_timeouts, timeout_kind};
use crate::downstream::framing;
use crate::lifecycle::{InFlight, Lifecycle};
use crate::routing::{normalize_host, Outcome, Reason, RequestInfo, TagAction};
use crate::routing::{ActiveTable, SharedTable};
use crate::telemetry::TableMetrics;
use crate::telemetry::{
    AccessLog, AccessRecord, ContainmentMetrics, RequestTrace, TimeoutKind, Tracing,
};
use async_trait::async_trait;
use bytes::Bytes;
use dyegate_plugins::trace_context::{TRACEPARENT_LEN, TRACERESPONSE};
use log::warn;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::error_resp::gen_error_response;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::Digest;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The proxy service logic. Holds the handle of the current table; see [`RequestCtx`] for what a
/// request keeps.
pub struct DyegateProxy {
    table: SharedTable<TableMetrics>,
    lifecycle: Arc<Lifecycle>,
    access_log: Option<AccessLog>,
    connect_timeout: Duration,
    tracing: Tracing,
    /// Counters of timeouts, retries and the like (shared with the metrics endpoint).
    failures: Arc<ContainmentMetrics>,
}

impl DyegateProxy {
    pub fn new(
        table: SharedTable<TableMetrics>,
        lifecycle: Arc<Lifecycle>,
        access_log: Option<AccessLog>,
        connect_timeout: Duration,
    ) -> Self {
        DyegateProxy {
            table,
            lifecycle,
            access_log,
            connect_timeout,
            tracing: Tracing::propagate_only(),
            failures: Arc::default(),
        }
    }

    /// Where timeouts, retries and other failure handling are counted.
    pub fn with_failure_metrics(mut self, failures: Arc<ContainmentMetrics>) -> Self {
        self.failures = failures;
        self
    }

    /// Replaces the default tracing (propagation only, new traces unsampled).
    pub fn with_tracing(mut self, tracing: Tracing) -> Self {
        self.tracing = tracing;
        self
    }
}

/// Per-request state: the table snapshot taken when the request started (kept for its whole
/// life, retries included) and the decision made on it.
pub struct RequestCtx {
    /// Counts this request as in flight until the context is dropped.
    _in_flight: InFlight,
    started: Instant,
    /// The active table (and its version) when the request started.
    table: Option<Arc<ActiveTable<TableMetrics>>>,
    outcome: CtxOutcome,
    /// Target of the first attempt, the current one, and how many attempts were made.
    first_target: Option<SocketAddr>,
    target: Option<SocketAddr>,
    attempts: usize,
    /// The gateway span, started first thing in `request_filter`.
    trace: Option<RequestTrace>,
}

/// The decision, held by index into the table snapshot the ctx keeps alive.
#[derive(Debug, Clone, Copy)]
enum CtxOutcome {
    Undecided,
    NoRoute,
    Rejected { route_id: usize },
    Routed(Routed),
}

#[derive(Debug, Clone, Copy)]
struct Routed {
    route_id: usize,
    group: usize,
    reason: Reason,
    tag: TagRef,
    action: Action,
}

/// The request's tag: one of the route's configured tags (by position), another value (only
/// forwarded), or none.
#[derive(Debug, Clone, Copy)]
enum TagRef {
    None,
    Configured(usize),
    Unconfigured,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Keep,
    Strip,
    Set,
}

fn peer_ip(session: &Session) -> Option<std::net::IpAddr> {
    match session.client_addr() {
        Some(PeerAddr::Inet(a)) => Some(a.ip()),
        _ => None,
    }
}

fn raw_host(req: &RequestHeader) -> &str {
    req.uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("")
}

/// The status Pingora's default `fail_to_proxy` answers an error with (0: the client is gone),
/// except that an upstream timeout is a 504, not a 502.
fn error_status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ if e.esource() == &ErrorSource::Upstream && timeout_kind(e).is_some() => 504,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

async fn respond_text(
    session: &mut Session,
    status: u16,
    body: &'static str,
    draining: bool,
    traceresponse: Option<[u8; TRACEPARENT_LEN]>,
) -> Result<bool> {
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    if let Some(value) = traceresponse {
        resp.insert_header(TRACERESPONSE, &value[..])?;
    }
    session.set_keepalive(if draining { None } else { Some(60) });
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
        .await?;
    Ok(true)
}

/// Index of an upstream error kind in `telemetry::metrics::ERROR_KINDS`.
fn error_kind(e: &Error) -> usize {
    match e.etype() {
        ConnectRefused => 0,
        ConnectTimedout | ReadTimedout | WriteTimedout => 1,
        ConnectionClosed | ReadError | WriteError => 2,
        _ => 3,
    }
}

#[async_trait]
impl ProxyHttp for DyegateProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            _in_flight: self.lifecycle.track(),
            started: Instant::now(),
            table: None,
            outcome: CtxOutcome::Undecided,
            first_target: None,
            target: None,
            attempts: 0,
            trace: None,
        }
    }

    /// Runs first for every request: refuses HTTP/1.1 without `Host` (400), decides the route
    /// and group, or answers 404/503 itself.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.trace = Some(self.tracing.start(session.req_header()));
        if let Some(why) = framing::refusal(session.req_header()) {
            let traceresponse = ctx
                .trace
                .as_ref()
                .and_then(|t| self.tracing.traceresponse(t));
            return respond_text(session, 400, why, true, traceresponse).await;
        }
        let active = self.table.load_full();
        let peer = peer_ip(session);
        let req = session.req_header();
        let host = normalize_host(raw_host(req));
        let info = RequestInfo {
            method: &req.method,
            host: &host,
            path: req.uri.path(),
            headers: &req.headers,
            peer,
        };
        let table = &active.table;
        let outcome = table.decide(&info);
        if let Some(trace) = ctx.trace.as_mut() {
            trace.record_outcome(table, active.version, &outcome);
        }
        ctx.outcome = match outcome {
            Outcome::NoRoute => CtxOutcome::NoRoute,
            Outcome::RejectedTag { route_id } => CtxOutcome::Rejected { route_id },
            Outcome::Routed(d) => {
                let tags = table.route(d.route_id).map(|r| &r.dye.tags);
                let tag = match d.tag {
                    None => TagRef::None,
                    Some(t) => tags
                        .and_then(|tags| tags.iter().position(|(x, _)| x.as_ref() == t))
                        .map_or(TagRef::Unconfigured, TagRef::Configured),
                };
                CtxOutcome::Routed(Routed {
                    route_id: d.route_id,
                    group: d.group,
                    reason: d.reason,
                    tag,
                    action: match d.tag_action {
                        TagAction::Keep => Action::Keep,
                        TagAction::Strip => Action::Strip,
                        TagAction::Set(_) => Action::Set,
                    },
                })
            }
        };
        ctx.table = Some(active);
        let draining = self.lifecycle.is_draining();
        let traceresponse = ctx
            .trace
            .as_ref()
            .and_then(|t| self.tracing.traceresponse(t));
        match ctx.outcome {
            CtxOutcome::NoRoute => {
                respond_text(session, 404, "no route\n", draining, traceresponse).await
            }
            CtxOutcome::Rejected { .. } => {
                respond_text(session, 503, "unknown env tag\n", draining, traceresponse).await
            }
            _ => Ok(false),
        }
    }

    /// Picks a target of the decided group; on a retry after a failed connect, the next one.
    async fn upstream_peer(&self, _s: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let (Some(active), CtxOutcome::Routed(d)) = (&ctx.table, ctx.outcome) else {
            return Err(Error::explain(
                InternalError,
                "upstream_peer without a routing decision",
            ));
        };
        let group = active
            .table
            .group(d.group)
            .ok_or_else(|| Error::explain(InternalError, "decided group missing from table"))?;
        let target = match ctx.first_target {
            None => group.next_target(),
            Some(first) => group.alternative(first, ctx.attempts),
        }
        .ok_or_else(|| Error::explain(ConnectNoRoute, "upstream group has no target"))?;
        if ctx.first_target.is_none() {
            ctx.first_target = Some(target.addr);
        }
        let route = active
            .table
            .route(d.route_id)
            .ok_or_else(|| Error::explain(InternalError, "decided route missing from table"))?;
        let Some(t) =
            attempt_timeouts(&route.timeouts, self.connect_timeout, ctx.started.elapsed())
        else {
            self.failures.timeout(&route.name, TimeoutKind::Total);
            return Err(Error::create(
                HTTPStatus(504),
                ErrorSource::Upstream,
                Some("the route's timeouts.total_ms passed".into()),
                None,
            ));
        };
        ctx.target = Some(target.addr);
        ctx.attempts += 1;
        let mut peer = HttpPeer::new(target.addr, false, String::new());
        peer.options.connection_timeout = Some(t.connect);
        peer.options.read_timeout = Some(t.read);
        peer.options.write_timeout = Some(t.write);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }

    /// Dyes the upstream request: keeps (the first line only), strips or sets the tag header.
    /// Writes the trace context (`traceparent`, `tracestate`, `baggage` with the tag) first, and
    /// leaves one `Content-Length` value.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(trace) = &ctx.trace {
            self.tracing.inject(trace, upstream_request)?;
        }
        framing::single_content_length(upstream_request)?;
        let (Some(active), CtxOutcome::Routed(d)) = (&ctx.table, ctx.outcome) else {
            return Ok(());
        };
        let Some(route) = active.table.route(d.route_id) else {
            return Ok(());
        };
        match (d.action, d.tag) {
            (Action::Strip, _) => {
                upstream_request.remove_header(&route.dye.header);
            }
            (Action::Set, TagRef::Configured(i)) => {
                if let Some((tag, _)) = route.dye.tags.get(i) {
                    upstream_request.insert_header(route.dye.header.clone(), tag.as_ref())?;
                }
            }
            (Action::Keep, _) => framing::first_tag_only(upstream_request, &route.dye.header)?,
            _ => {}
        }
        Ok(())
    }

    /// While the process hands over to a new one, every response closes its connection so that
    /// keep-alive clients reconnect (to the new process) instead of finding the socket closed.
    /// With `traceresponse: true`, the response tells the client the trace id and the gateway
    /// span id.
    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if self.lifecycle.is_draining() {
            session.set_keepalive(None);
        }
        if let Some(value) = ctx
            .trace
            .as_ref()
            .and_then(|t| self.tracing.traceresponse(t))
        {
            upstream_response.insert_header(TRACERESPONSE, &value[..])?;
        }
        Ok(())
    }

    /// Pingora's error answer (502 when no target could be reached, 400 for a bad request, ...),
    /// plus `traceresponse` when it is on: a failed request is the one a client most wants to
    /// find in the traces.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = error_status(e);
        if code > 0 {
            let mut resp = gen_error_response(code);
            if let Some(value) = ctx
                .trace
                .as_ref()
                .and_then(|t| self.tracing.traceresponse(t))
            {
                // A header value of hex digits and dashes: cannot fail; if it did, the error
                // answer goes out without it.
                let _ = resp.insert_header(TRACERESPONSE, &value[..]);
            }
            if let Err(err) = session.write_error_response(resp, Bytes::new()).await {
                log::debug!("error answer not sent downstream: {err}");
            }
        }
        FailToProxy {
            error_code: code,
            // As Pingora's default: a connection whose request failed is not reused.
            can_reuse_downstream: false,
        }
    }

    /// Notes the upstream address for the span (`network.peer.address`).
    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        peer: &HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        _digest: Option<&Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(trace) = ctx.trace.as_mut() {
            trace.connected(&peer._address);
        }
        Ok(())
    }

    /// A refused or timed-out connect is retried on the group's other targets, each once.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(trace) = ctx.trace.as_mut() {
            trace.connect_failed(&peer._address, &e);
        }
        let (live, group) = match (&ctx.table, ctx.outcome) {
            (Some(t), CtxOutcome::Routed(d)) => (
                t.table.group(d.group).map_or(0, |g| g.live_targets()),
                Some((t, d.group)),
            ),
            _ => (0, None),
        };
        if let (Some((t, g)), Some(target)) = (group, ctx.target) {
            t.metrics.upstream_error(g, target, error_kind(&e));
        }
        self.count_timeout(ctx, &e);
        warn!(
            "connect to upstream {} failed (attempt {} of {}): {}",
            peer._address, ctx.attempts, live, e
        );
        if ctx.attempts < live {
            e.set_retry(true);
        }
        e
    }

    /// An attempt failed after its connection was made. As Pingora's default (a request that
    /// is not idempotent, or whose body no longer fits the replay buffer, is not retried), and
    /// counts timeouts.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        self.count_timeout(ctx, &e);
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    /// Runs once per request at its end: the gateway span, metrics and the access log (all
    /// lock-free).
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(trace) = ctx.trace.as_mut() {
            trace.finish(session, e);
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let Some(active) = &ctx.table else { return };
        let m = &active.metrics;
        match ctx.outcome {
            CtxOutcome::Routed(d) => {
                let tag = match d.tag {
                    TagRef::Configured(i) => active
                        .table
                        .route(d.route_id)
                        .and_then(|r| r.dye.tags.get(i))
                        .map(|(t, _)| t.as_ref()),
                    TagRef::Unconfigured => Some(crate::telemetry::metrics::OTHER_TAG),
                    TagRef::None => None,
                };
                m.request(
                    d.route_id,
                    d.group,
                    tag,
                    d.reason,
                    if status == 0 { 502 } else { status },
                    ctx.started.elapsed().as_secs_f64(),
                );
                if let (Some(e), Some(target)) = (e, ctx.target) {
                    let connect = matches!(
                        e.etype(),
                        ConnectRefused | ConnectTimedout | ConnectNoRoute | ConnectError
                    );
                    if e.esource() == &ErrorSource::Upstream && !connect {
                        m.upstream_error(d.group, target, error_kind(e));
                    }
                }
            }
            CtxOutcome::NoRoute => m.no_route(status),
            CtxOutcome::Rejected { route_id } => m.rejected(route_id, status),
            CtxOutcome::Undecided => {}
        }
        if let Some(log) = &self.access_log {
            log.log(self.access_record(session, ctx, active, status));
        }
    }

    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        let base = session.as_downstream().request_summary();
        match (&ctx.table, ctx.outcome) {
            (Some(t), CtxOutcome::Routed(d)) => format!(
                "{base}, route {}, group {}, reason {}, routing version {}",
                t.table.route(d.route_id).map_or("?", |r| &r.name),
                t.table.group(d.group).map_or("?", |g| &g.name),
                d.reason.as_str(),
                t.version
            ),
            _ => base,
        }
    }
}

impl DyegateProxy {
    /// Counts an attempt's upstream timeout under its route.
    fn count_timeout(&self, ctx: &RequestCtx, e: &Error) {
        let (Some(kind), Some(active), CtxOutcome::Routed(d)) =
            (timeout_kind(e), &ctx.table, ctx.outcome)
        else {
            return;
        };
        if let Some(route) = active.table.route(d.route_id) {
            self.failures.timeout(&route.name, kind);
        }
    }

    fn access_record(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        active: &ActiveTable<TableMetrics>,
        status: u16,
    ) -> AccessRecord {
        let req = session.req_header();
        let (route, group, tag, decision) = match ctx.outcome {
            CtxOutcome::Routed(d) => {
                let route = active.table.route(d.route_id);
                let tag = match d.tag {
                    TagRef::Configured(i) => route
                        .and_then(|r| r.dye.tags.get(i))
                        .map(|(t, _)| t.to_string()),
                    TagRef::Unconfigured => route
                        .and_then(|r| req.headers.get(&r.dye.header))
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    TagRef::None => None,
                };
                (
                    route.map(|r| r.name.to_string()),
                    active.table.group(d.group).map(|g| g.name.to_string()),
                    tag,
                    Some(d.reason.as_str()),
                )
            }
            CtxOutcome::Rejected { route_id } => (
                active.table.route(route_id).map(|r| r.name.to_string()),
                None,
                None,
                Some("reject"),
            ),
            _ => (None, None, None, None),
        };
        let downstream = session.as_downstream();
        AccessRecord {
            time: crate::stamp::now_rfc3339(),
            client: session.client_addr().map(|a| a.to_string()),
            method: req.method.as_str().to_string(),
            host: raw_host(req).to_string(),
            path: req.uri.path().to_string(),
            status,
            duration_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
            bytes_in: downstream.body_bytes_read(),
            bytes_out: downstream.body_bytes_sent(),
            route,
            upstream_group: group,
            target: ctx.target.map(|t| t.to_string()),
            tag,
            decision,
            routing_version: active.version,
            trace_id: ctx.trace.as_ref().map(RequestTrace::trace_id_hex),
        }
    }
}
