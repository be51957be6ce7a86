//! The access log record of a finished request.

use super::answer::raw_host;
use super::ctx::{CtxOutcome, RequestCtx, TagRef};
use super::DyegateProxy;
use crate::routing::ActiveTable;
use crate::telemetry::TableMetrics;
use crate::telemetry::{AccessRecord, RequestTrace};
use pingora::proxy::Session;

impl DyegateProxy {
    pub(super) fn access_record(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        active: &ActiveTable<TableMetrics>,
        status: u16,
        broken: bool,
    ) -> AccessRecord {
        let req = session.req_header();
        let (route, group, tag, decision) = match ctx.outcome {
            CtxOutcome::Routed(d) => {
                let route = active.table.route(d.route_id);
                let tag = match d.tag {
                    TagRef::Configured(_) => ctx.configured_tag(active, &d).map(str::to_string),
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
            client: ctx.client.map(|c| c.to_string()),
            method: req.method.as_str().to_string(),
            host: raw_host(req).to_string(),
            path: req.uri.path().to_string(),
            status,
            broken,
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
            grpc_status: ctx.grpc_label().map(|g| g.label()),
        }
    }
}
