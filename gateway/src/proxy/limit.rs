//! Rate limits on the request path: the route's `limits`, or `dye.limits` for a request routed
//! by its tag. A refused request is answered `429` with `retry-after` before it takes any
//! upstream capacity (in-flight count, retry budget), and counted in
//! `dyegate_rate_limited_total{route}`.

use super::{DyegateProxy, RequestCtx};
use crate::routing::Reason;
use pingora::prelude::*;
use pingora::proxy::Session;

impl DyegateProxy {
    /// `Ok(true)` when the request was refused and answered here.
    pub(super) async fn rate_limit(&self, session: &mut Session, ctx: &RequestCtx) -> Result<bool> {
        let Some((active, d)) = ctx.routed() else {
            return Ok(false);
        };
        let Some(route) = active.table.route(d.route_id) else {
            return Ok(false);
        };
        let lane = match (&route.dye.limits, d.reason) {
            (Some(l), Reason::Tag) => Some(l),
            _ => None,
        };
        let Some(limit) = lane.or(route.limits.as_ref()) else {
            return Ok(false);
        };
        let client = ctx.client.map(|c| c.ip);
        let key = limit.key_of(client, &session.req_header().headers);
        let Err(retry_after) = limit.check(&key) else {
            return Ok(false);
        };
        self.failures.rate_limited(&route.name);
        let body = format!("rate limit of route {} exceeded", route.name);
        self.answer(ctx, 429, body, &[("retry-after", retry_after.to_string())])
            .send(session)
            .await
    }
}
