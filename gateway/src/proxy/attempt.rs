//! One attempt on a target, and what a failed one leads to: the target is picked among the
//! healthy, non-ejected targets of the decided group (another one on a retry), every attempt's
//! result feeds outlier detection (a good head's once its answer has ended: `ending.rs`), and a
//! failure is retried as the route's `retries` and its budget allow.

use super::ctx::RequestCtx;
use super::DyegateProxy;
use crate::contain::{attempt_timeouts, reason_of, verdict, Replay, StreamKind, Verdict};
use crate::health::Attempt;
use crate::routing::{Group, RetryReason};
use crate::telemetry::TimeoutKind;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::RetryType;
use std::time::Duration;

impl DyegateProxy {
    /// The peer of the next attempt: a target of the decided group that may be picked (one
    /// not tried yet, on a retry), with the route's timeouts capped by the request's deadline.
    pub(super) fn next_peer(
        &self,
        req: &RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some((active, d)) = ctx.routed() else {
            return Err(Error::explain(
                InternalError,
                "upstream_peer without a routing decision",
            ));
        };
        let group = active
            .table
            .group(d.group)
            .ok_or_else(|| Error::explain(InternalError, "decided group missing from table"))?;
        let route = active
            .table
            .route(d.route_id)
            .ok_or_else(|| Error::explain(InternalError, "decided route missing from table"))?;
        let members = ctx
            .members(group)
            .ok_or_else(|| Error::explain(InternalError, "decided group without its targets"))?;
        let view = self.health.view();
        let target = if ctx.tried.is_empty() {
            members.pick(&view)
        } else {
            members.pick_other(&ctx.tried, &view)
        };
        let Some(target) = target else {
            // Every target went down between the decision and now.
            return Err(Error::create(
                HTTPStatus(503),
                ErrorSource::Upstream,
                Some(format!("no healthy target in upstream group {}", group.name).into()),
                None,
            ));
        };
        let Some(t) = attempt_timeouts(&route.timeouts, self.connect_timeout, || {
            ctx.started.elapsed()
        }) else {
            self.failures.timeout(&route.name, TimeoutKind::Total);
            return Err(Error::create(
                HTTPStatus(504),
                ErrorSource::Upstream,
                Some("the route's timeouts.total_ms passed".into()),
                None,
            ));
        };
        let addr = target.addr;
        let stream = StreamKind::of(req, group.transport.protocol.is_h2());
        // The prepared peer (protocol, TLS, CA) of the target: cloned, never built here.
        let mut peer = members
            .peer_of(target)
            .cloned()
            .ok_or_else(|| Error::explain(InternalError, "picked target has no prepared peer"))?;
        ctx.target = Some(addr);
        ctx.stream = stream;
        ctx.head_wait = t.head_wait(stream);
        ctx.head_timer = None;
        ctx.tried.push(addr);
        ctx.target_load = None; // the previous attempt's, if any
        ctx.target_load = Some(self.health.enter_target(addr));
        peer.options.connection_timeout = Some(t.connect);
        // A stream (an upgrade, a gRPC call) reads with `stream_idle_ms`; an upgrade's head
        // keeps `read_ms` through dyegate's own timer, armed once connected.
        // `None` (`read_ms: 0`): a request may wait as long as the upstream keeps it open.
        peer.options.read_timeout = t.per_read(stream);
        peer.options.write_timeout = Some(t.write);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }

    /// The decided group, if the request has one.
    fn group_of<'c>(&self, ctx: &'c RequestCtx) -> Option<&'c Group> {
        let (active, d) = ctx.routed()?;
        active.table.group(d.group)
    }

    /// Feeds the current attempt's result to outlier detection.
    pub(super) fn report(&self, ctx: &RequestCtx, attempt: Attempt) {
        let Some(group) = self.group_of(ctx) else {
            return;
        };
        if let (Some(members), Some(target)) = (ctx.members(group), ctx.target) {
            match &ctx.target_load {
                Some(guard) => (self.health).report_guarded(group, members, target, guard, attempt),
                None => self.health.report(group, members, target, attempt),
            }
        }
    }

    /// Whether the failed attempt is retried: the route's `retries` and budget decide, and
    /// the retry (or the spent budget) is counted.
    pub(super) fn decide_retry(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        reason: Option<RetryReason>,
    ) -> Verdict {
        let (Some((active, d)), Some(budget)) = (ctx.routed(), ctx.budget.as_ref()) else {
            return Verdict::No;
        };
        let Some(route) = active.table.route(d.route_id) else {
            return Verdict::No;
        };
        let another_target = (active.table.group(d.group))
            .and_then(|g| ctx.members(g))
            .is_some_and(|m| m.has_other(&ctx.tried, &self.health.view()));
        let replay = Replay {
            idempotent: session.req_header().method.is_idempotent(),
            body_buffered: !session.as_ref().retry_buffer_truncated(),
            responded: session.response_written().is_some(),
            another_target,
        };
        let v = verdict(
            &route.retries,
            reason,
            ctx.retried,
            replay,
            budget,
            self.budgets.now_sec(),
        );
        match v {
            Verdict::Retry(r) => {
                self.failures.retry(&route.name, r.as_str());
                ctx.retried += 1;
            }
            Verdict::BudgetExhausted => self.failures.budget_exhausted(&route.name),
            Verdict::No => {}
        }
        v
    }

    /// An attempt failed before its connection was made: counted against the target, retried
    /// on another target when `retries.on` has `connect_failure` and the budget allows.
    pub(super) fn after_connect_failure(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        e: &mut Error,
    ) {
        self.report(ctx, Attempt::Failure);
        let v = self.decide_retry(session, ctx, Some(RetryReason::ConnectFailure));
        e.set_retry(matches!(v, Verdict::Retry(_)));
    }

    /// An attempt failed after its connection was made. A failure of a pooled connection that
    /// the upstream had closed meanwhile is retried as Pingora does by default (when the
    /// request can be replayed) and not held against the target; any other upstream failure
    /// counts against the target and is retried as `retries` says.
    pub(super) fn after_proxy_error(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        e: &mut Error,
        client_reused: bool,
    ) {
        if ctx.status_retry.take().is_some() {
            e.set_retry(true); // decided and counted on the answer's status
            return;
        }
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated()
            && session.response_written().is_none();
        if client_reused && matches!(e.retry, RetryType::ReusedOnly) {
            e.set_retry(replayable);
            return;
        }
        if e.esource() != &ErrorSource::Upstream || ctx.idle_closed {
            // An idle stream closed after `stream_idle_ms` ended normally: its good head's
            // attempt is a success (`ending.rs`).
            e.set_retry(false);
            return;
        }
        // A failure after a good head (a body that broke off) is this attempt's verdict.
        ctx.awaiting_end = false;
        self.report(ctx, Attempt::Failure);
        let v = self.decide_retry(session, ctx, reason_of(e, false));
        e.set_retry(matches!(v, Verdict::Retry(_)));
    }
}
