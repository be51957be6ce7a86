//! The Pingora phase hooks of [`DyegateProxy`]: each says when Pingora calls it and what it does
//! for dyegate; the steps they share are methods in the parent module.

use super::answer::{error_kind, error_status, peer_ip, raw_host, Answer};
use super::ctx::{Action, CtxOutcome, Routed, TagRef};
use super::{
    answer, ending, error_body, forwarded, head_wait, hsts, redirect, DyegateProxy, RequestCtx,
};
use crate::contain::DECISION_HEADER;
use crate::downstream::coalesce;
use crate::downstream::fields::{self, Fields};
use crate::downstream::{framing, hop_by_hop, room};
use crate::health::Attempt;
use crate::routing::{normalize_host, RetryReason};
use crate::telemetry::{GrpcStatus, StatusClass};
use async_trait::async_trait;
use bytes::Bytes;
use dyegate_plugins::forwarded::Hop;
use dyegate_plugins::trace_context::TRACERESPONSE;
use log::warn;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::protocols::Digest;
use pingora::proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};

/// An upgrade's response head that did not come within `read_ms` (`head_wait.rs`): a read
/// timeout, as it would be without the timer. Counted as `read`, not `stream_idle`.
fn head_timed_out() -> Box<Error> {
    Error::explain(ReadTimedout, HEAD_TIMED_OUT).into_up()
}

/// The copies' marker, parsed once (a lookup by `&str` parses the name each time).
static MARKER_NAME: http::HeaderName = http::HeaderName::from_static(crate::mirror::MARKER);

const HEAD_TIMED_OUT: &str = "no response head to the upgrade within read_ms";

/// Whether the request came over one of the HTTPS listeners.
pub(super) fn on_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

#[async_trait]
impl ProxyHttp for DyegateProxy {
    /// Boxed: Pingora keeps `CTX` inline in the future it builds and moves onto the heap for
    /// every request (docs/pingora-upstream.md §24); a pointer there and one allocation cost
    /// fewer instructions than ~300 bytes more moved (-1.3%, docs/benchmarks.md).
    type CTX = Box<RequestCtx>;

    fn new_ctx(&self) -> Box<RequestCtx> {
        Box::new(RequestCtx::new(self.lifecycle.track()))
    }

    /// No downstream modules. Pingora's default registers a response-compression module at
    /// level 0 (disabled), whose context is still built and whose filters still run on every
    /// request; dyegate does not compress (benches/load/README.md, "Levers").
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    /// Runs first for every request: refuses HTTP/1.1 without `Host` (400), decides the route
    /// and group (skipping groups with no healthy target as the route says), applies the
    /// group's circuit breaker, or answers 404/503 itself.
    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<bool> {
        ctx.trace = Some(self.tracing.start(session.req_header()));
        if let Some(why) = framing::refusal(session.req_header()) {
            return Answer {
                draining: true,
                ..self.answer(ctx, 400, why.to_string(), &[])
            }
            .send(session)
            .await;
        }
        let active = self.table.load_full();
        let req = session.req_header();
        ctx.peer = peer_ip(session);
        let live = self.live.load();
        ctx.client = forwarded::client_of(&live.forwarding, session.client_addr(), &req.headers);
        let client = ctx.client.map(|c| c.ip);
        if let Some(trace) = ctx.trace.as_mut() {
            trace.set_client(ctx.client);
        }
        let host = normalize_host(raw_host(req));
        ctx.debug = live.debug.wants(&req.headers, client);
        self.decide(ctx, &active, req, &host);
        let redirect = match ctx.outcome {
            CtxOutcome::Routed(Routed { route_id, .. }) | CtxOutcome::Rejected { route_id } => {
                active
                    .table
                    .route(route_id)
                    .is_some_and(|r| r.https_redirect)
            }
            CtxOutcome::NoRoute | CtxOutcome::Undecided => false,
        };
        ctx.table = Some(active);
        if redirect && !on_tls(session) {
            let location = redirect::https_location(session.req_header(), &host, self.https_port);
            return self.answer_redirect(session, ctx, location).await;
        }
        if self.rate_limit(session, ctx).await? {
            return Ok(true);
        }
        self.admit(ctx);
        self.admit_mirrors(session.req_header(), ctx);
        self.answer_decision(session, ctx).await
    }

    /// Picks a target of the decided group among those that may be picked; on a retry,
    /// another one.
    async fn upstream_peer(
        &self,
        s: &mut Session,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<Box<HttpPeer>> {
        self.next_peer(s.req_header(), ctx)
    }

    /// Dyes the upstream request: keeps (the first line only), strips or sets the tag header.
    /// Takes the hop-by-hop fields off first, as Pingora would before this hook (its own
    /// sanitising is off: the peers carry `HttpUpstreamRequestPolicy::preserve()`,
    /// `downstream/hop_by_hop.rs`), then writes the trace context (`traceparent`,
    /// `tracestate`, `baggage` with the tag) and the forwarding headers (gateway.yaml
    /// `forwarded`), and leaves one `Content-Length` value.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        hop_by_hop::strip(upstream_request, session.req_header().version)?;
        let hop = Hop {
            peer: ctx.peer,
            client: ctx.client.map(|c| c.ip),
            proto: forwarded::proto(on_tls(session)),
            host: raw_host(session.req_header()),
        };
        let ctx_now = &*ctx;
        fields::edit(upstream_request, room::MOST_ADDED, |up| {
            if let Some(trace) = &ctx_now.trace {
                self.tracing.inject(trace, up)?;
            }
            forwarded::write_upstream(&self.live.load().forwarding, &hop, up)?;
            framing::single_content_length(up)?;
            // Only copies are marked: a client cannot pose as one.
            up.remove(&MARKER_NAME);
            dye_upstream(ctx_now, up)
        })?;
        if let Some(copies) = ctx.mirror.as_mut() {
            let r = &*upstream_request;
            copies.head(&r.method, &r.uri, &r.headers);
        }
        Ok(())
    }

    /// Each piece of the request's body on its way upstream (once with none for a request
    /// without a body, and again from the retry buffer on a retry): copied for the request's
    /// mirrored copies, which leave when it has ended. An HTTP/2 body's empty end frame is not
    /// passed on as an empty chunk (`framing::end_without_empty_chunk`).
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        framing::end_without_empty_chunk(body, end_of_stream);
        if let Some(copies) = ctx.mirror.as_mut() {
            copies.body(body.as_ref());
            if end_of_stream {
                self.send_mirrors(ctx);
            }
        }
        Ok(())
    }

    /// The upstream's answer head, before anything goes downstream: its status feeds outlier
    /// detection (5xx is a failure; any other waits for the end of the answer, which may still
    /// break off), and a status in `retries.on` is retried on another target when the route
    /// allows (returning an error here is how Pingora lets an attempt be tried again before the
    /// response started).
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        if status == 101 || status >= 200 {
            if let Some(timer) = ctx.head_timer.take() {
                if !timer.answered() {
                    return Err(head_timed_out());
                }
            }
        }
        if status < 200 {
            return Ok(());
        }
        if ctx.upstream_h2() {
            // A trailers-only gRPC answer carries its status in the head.
            ctx.grpc_status = GrpcStatus::of(&upstream_response.headers);
        }
        if status >= 500 {
            self.report(ctx, Attempt::Failure);
        } else {
            ctx.awaiting_end = true;
        }
        if let Some(reason) = RetryReason::for_status(status) {
            if let crate::contain::Verdict::Retry(r) = self.decide_retry(session, ctx, Some(reason))
            {
                ctx.status_retry = Some(r);
                let mut e = Error::create(
                    HTTPStatus(status),
                    ErrorSource::Upstream,
                    Some(format!("upstream answered {status}, retried").into()),
                    None,
                );
                e.set_retry(true);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The upstream's trailers (HTTP/2 only; Pingora passes them on as they are): the
    /// `grpc-status` of a gRPC answer, for the access log and `dyegate_requests_total`.
    fn upstream_response_trailer_filter(
        &self,
        _session: &mut Session,
        upstream_trailers: &mut http::HeaderMap,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        if let Some(s) = GrpcStatus::of(upstream_trailers) {
            ctx.grpc_status = Some(s);
        }
        Ok(())
    }

    /// With compared copies, the answer's head as the upstream sent it is noted first. While
    /// the process hands over to a new one, every response closes its connection so that
    /// keep-alive clients reconnect (to the new process) instead of finding the socket closed.
    /// With `traceresponse: true`, the response tells the client the trace id and the gateway
    /// span id; a trusted client that asked gets `x-dyegate-decision`.
    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        if let Some(primary) = ctx.mirror_primary.as_mut() {
            primary.head(
                upstream_response.status.as_u16(),
                &upstream_response.headers,
            );
        }
        if self.lifecycle.is_draining() {
            session.set_keepalive(None);
        }
        hsts::add(session, self.live.load().hsts.as_ref(), upstream_response)?;
        if let Some(value) = ctx
            .trace
            .as_ref()
            .and_then(|t| self.tracing.traceresponse(t))
        {
            upstream_response.insert_header(TRACERESPONSE, &value[..])?;
        }
        if let Some(value) = ctx.explanation() {
            upstream_response.insert_header(DECISION_HEADER, value)?;
        }
        // A small answer's head leaves with its body, in one write (downstream::coalesce).
        if let Some(stream) = session.stream() {
            if coalesce::worth_holding(&session.req_header().method, upstream_response) {
                coalesce::hold_head(stream);
            }
        }
        Ok(())
    }

    /// Each piece of the answer's body on its way downstream: hashed for compared copies.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<Option<std::time::Duration>> {
        if let (Some(primary), Some(chunk)) = (ctx.mirror_primary.as_mut(), body.as_ref()) {
            primary.body(chunk);
        }
        Ok(None)
    }

    /// Pingora's error answer (502 when no target could be reached, 504 on an upstream timeout,
    /// 400 for a bad request, ...), plus `traceresponse` when it is on: a failed request is the
    /// one a client most wants to find in the traces. When the client already has the
    /// upstream's head, no answer can be given: an upstream failure then breaks the answer off,
    /// noted for `logging`.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Box<RequestCtx>,
    ) -> FailToProxy {
        let code = error_status(e);
        if ending::head_sent(session) {
            ctx.broken_after_head = e.esource() == &ErrorSource::Upstream && !ctx.idle_closed;
        }
        // After the head, Pingora writes nothing (and closes the connection).
        if code > 0 {
            let group = (ctx.routed())
                .and_then(|(active, d)| active.table.group(d.group).map(|g| g.name.clone()));
            let detail = answer::error_detail(code, e, group.as_deref());
            let trace_id = ctx.trace.as_ref().map(|t| t.trace_id_hex());
            let (content_type, body) = error_body::render(
                &error_body::ErrorBody {
                    status: code,
                    detail: &detail,
                    trace_id: trace_id.as_deref(),
                },
                &session.req_header().headers,
            );
            let traceresponse = (ctx.trace.as_ref()).and_then(|t| self.tracing.traceresponse(t));
            let live = self.live.load();
            let head =
                answer::error_head(code, live.server_header.as_ref(), content_type, body.len())
                    .and_then(|mut resp| {
                        hsts::add(session, live.hsts.as_ref(), &mut resp)?;
                        if let Some(value) = traceresponse {
                            resp.insert_header(TRACERESPONSE, &value[..])?;
                        }
                        if let Some(value) = ctx.explanation() {
                            resp.insert_header(DECISION_HEADER, value)?;
                        }
                        Ok(resp)
                    });
            let sent = match head {
                Ok(resp) => session.write_error_response(resp, Bytes::from(body)).await,
                Err(e) => Err(e),
            };
            if let Err(err) = sent {
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
        #[cfg(unix)] fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        _digest: Option<&Digest>,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        if let Some(trace) = ctx.trace.as_mut() {
            trace.connected(&peer._address);
        }
        #[cfg(unix)]
        if let Some(wait) = ctx.head_wait {
            match head_wait::HeadWait::arm(fd, wait) {
                Ok(timer) => ctx.head_timer = Some(timer),
                // Without it, the head waits `stream_idle_ms` (still bounded).
                Err(e) => warn!("upgrade to {}: no head timer: {e}", peer._address),
            }
        }
        Ok(())
    }

    /// A refused or timed-out connect: counted against the target, and tried on another target
    /// of the group when the route's `retries` and its budget allow.
    fn fail_to_connect(
        &self,
        session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut Box<RequestCtx>,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(trace) = ctx.trace.as_mut() {
            trace.connect_failed(&peer._address, &e);
        }
        if let (Some((t, d)), Some(target)) = (ctx.routed(), ctx.target) {
            t.metrics.upstream_error(d.group, target, error_kind(&e));
        }
        self.count_timeout(ctx, &e, false);
        self.after_connect_failure(session, ctx, &mut e);
        // A failure that ends the request is logged once, with the request (`logging`).
        if e.retry() {
            let attempt = ctx.tried.len();
            self.log_upstream_failure(ctx.target, || {
                format!(
                    "connect to upstream {} failed (attempt {attempt}, retried): {e}",
                    peer._address
                )
            });
        }
        e
    }

    /// An attempt failed after its connection was made: counts timeouts and the failure, and
    /// retries as the route says (never what cannot be replayed; see `attempt.rs`).
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Box<RequestCtx>,
        client_reused: bool,
    ) -> Box<Error> {
        // The upgrade's head did not come within `read_ms`: its timer shut the socket down.
        let head_expired = ctx.head_timer.take().is_some_and(|t| t.expired())
            || e.context
                .as_ref()
                .is_some_and(|c| c.as_str() == HEAD_TIMED_OUT);
        let e = if head_expired { head_timed_out() } else { e };
        let stream = ctx.stream.is_stream() && !head_expired;
        ctx.idle_closed = stream
            && e.etype() == &ReadTimedout
            && e.esource() == &ErrorSource::Upstream
            && ending::head_sent(session);
        self.count_timeout(ctx, &e, stream);
        let mut e = e.more_context(format!("Peer: {peer}"));
        self.after_proxy_error(session, ctx, &mut e, client_reused);
        if e.retry() {
            let attempt = ctx.tried.len();
            self.log_upstream_failure(ctx.target, || {
                format!(
                    "upstream {} failed (attempt {attempt}, retried): {e}",
                    peer._address
                )
            });
        }
        e
    }

    /// Pingora's own line for a failed request: replaced by dyegate's (`logging`), one per
    /// failed request and bounded per target, for upstream failures.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Box<RequestCtx>, e: &Error) -> bool {
        e.esource() == &ErrorSource::Upstream
    }

    /// Pingora's line for each retried attempt: dyegate logs those itself, bounded per target.
    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &Box<RequestCtx>,
        e: &Error,
        context: ProxyWarnLogContext,
    ) -> bool {
        context == ProxyWarnLogContext::UpstreamRetry && e.esource() == &ErrorSource::Upstream
    }

    /// Runs once per request at its end: the gateway span, how the answer ended (outlier
    /// detection's verdict on a good head; `status_class="error"` for an answer broken after its
    /// head), metrics and the access log (all lock-free).
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Box<RequestCtx>) {
        if let Some(trace) = ctx.trace.as_mut() {
            trace.finish(session, e);
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        if let Some(primary) = ctx.mirror_primary.take() {
            // Whole: no error and the head went downstream.
            primary.finish(e.is_none() && status != 0);
        }
        let grpc = ctx.grpc_label();
        let class = self.ending(session, e, ctx, status, grpc);
        self.lifecycle.answered(class.is_failure());
        if let Some(e) = e.filter(|e| e.esource() == &ErrorSource::Upstream) {
            // One line per failed request (Pingora's is suppressed), bounded per target.
            let tries = ctx.tried.len();
            self.log_upstream_failure(ctx.target, || {
                let trace = (ctx.trace.as_ref()).map_or_else(String::new, |t| t.trace_id_hex());
                let target = ctx.target.map_or_else(|| "-".to_string(), |t| t.to_string());
                format!(
                    "request to upstream {target} failed, status {status}: {e}, tries {tries}, {}, trace id {trace}",
                    self.request_summary(session, ctx)
                )
            });
        }
        let Some(active) = &ctx.table else { return };
        let m = &active.metrics;
        match ctx.outcome {
            CtxOutcome::Routed(d) => {
                let tag = match d.tag {
                    TagRef::Unconfigured => Some(crate::telemetry::metrics::OTHER_TAG),
                    _ => ctx.configured_tag(active, &d),
                };
                let seconds = ctx.started.elapsed().as_secs_f64();
                match grpc {
                    None => m.request(d.route_id, d.group, tag, d.reason, class, seconds),
                    Some(grpc) => {
                        m.request_grpc(d.route_id, d.group, tag, d.reason, class, seconds, grpc)
                    }
                }
                if let (Some(e), Some(target), false) = (e, ctx.target, ctx.idle_closed) {
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
        if let Some(log) = self.access_log.as_ref().filter(|l| l.is_on()) {
            let broken = class == StatusClass::Error;
            log.log(self.access_record(session, ctx, active, status, broken));
        }
    }

    fn request_summary(&self, session: &Session, ctx: &Box<RequestCtx>) -> String {
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

/// The dye header on the upstream request, as the decision said: set to the tag, stripped, or
/// kept (its first line only).
fn dye_upstream(ctx: &RequestCtx, up: &mut dyn Fields) -> Result<()> {
    let Some((active, d)) = ctx.routed() else {
        return Ok(());
    };
    let Some(route) = active.table.route(d.route_id) else {
        return Ok(());
    };
    let (header, prepared) = (&route.dye.header, &route.dye.upstream);
    match (d.action, d.tag) {
        (Action::Strip, _) => up.remove(header),
        // The name's case and the tag's value were made with the table: nothing copied.
        (Action::Set, TagRef::Configured(i)) => {
            if let Some(value) = prepared.tag_values.get(i) {
                up.set_named(header, &prepared.header_case, value.clone())?;
            }
        }
        // A tag from a cookie or the query that names none of the route's groups: it travels
        // upstream as the header, as a header tag would.
        (Action::Set, TagRef::Unconfigured) => {
            if let Some(tag) = ctx.set_tag.as_deref() {
                up.set_named(header, &prepared.header_case, fields::header_value(tag)?)?;
            }
        }
        (Action::Keep, _) => framing::first_tag_only(up, header, &prepared.header_case)?,
        _ => {}
    }
    Ok(())
}
