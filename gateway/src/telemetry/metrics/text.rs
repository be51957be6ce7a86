//! The per-route families as Prometheus text, straight from the store's atomics: requests (with
//! `grpc_status` for groups spoken to over HTTP/2), decisions, durations and upstream errors.

use super::{
    lock, AnswerClasses, Classes, GrpcClasses, PairStats, RouteStats, Store, BUCKETS, ERROR_KINDS,
    REASONS,
};
use crate::telemetry::grpc_status::{GrpcStatus, GRPC_STATUS_LABELS};
use crate::telemetry::status_class::{HTTP_STATUS_CLASSES, STATUS_CLASS_LABELS};
use crate::telemetry::text_format::esc;
use crate::telemetry::ContainmentMetrics;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

type Pairs<'a> = [(&'a (String, String), &'a Arc<PairStats>)];
type Routes<'a> = [(&'a String, &'a Arc<RouteStats>)];

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Every per-route family of `store`, sorted by labels; `no_route` counts the answers no route
/// matched; `containment` adds its decisions to `dyegate_decisions_total`.
pub(super) fn render_routes(
    store: &Store,
    no_route: &AnswerClasses,
    containment: &ContainmentMetrics,
    out: &mut String,
) {
    let mut pairs: Vec<(&(String, String), &Arc<PairStats>)> = store.pairs.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut routes: Vec<(&String, &Arc<RouteStats>)> = store.routes.iter().collect();
    routes.sort_by(|a, b| a.0.cmp(b.0));
    requests(&pairs, &routes, no_route, out);
    decisions(&pairs, &routes, out);
    containment.render_decisions(out);
    durations(&pairs, out);
    upstream_errors(store, out);
}

/// `dyegate_requests_total`: per pair and tag, the rejections per route, and the answers no
/// route matched.
fn requests(pairs: &Pairs<'_>, routes: &Routes<'_>, no_route: &AnswerClasses, out: &mut String) {
    out.push_str("# HELP dyegate_requests_total Requests by route, upstream group, dye tag and status class (error: the answer broke off after its head).\n# TYPE dyegate_requests_total counter\n");
    for ((route, group), p) in pairs {
        let (route, group) = (esc(route), esc(group));
        let h2 = p.h2.load(Ordering::Relaxed);
        let mut tags: Vec<(String, Arc<Classes>)> = lock(&p.tags).clone();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        // A group that speaks HTTP/2 has its series with `grpc_status`; the ones without
        // show only what they counted while it spoke HTTP/1.
        tags.retain(|(_, c)| !h2 || c.iter().any(|n| load(n) > 0));
        for (tag, classes) in &tags {
            for (i, c) in STATUS_CLASS_LABELS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "dyegate_requests_total{{env_tag=\"{}\",route=\"{route}\",status_class=\"{c}\",upstream_group=\"{group}\"}} {}",
                    esc(tag),
                    load(&classes[i])
                );
            }
        }
    }
    for ((route, group), p) in pairs {
        render_grpc(out, route, group, p);
    }
    for (route, r) in routes {
        for (i, c) in STATUS_CLASS_LABELS
            .iter()
            .take(HTTP_STATUS_CLASSES)
            .enumerate()
        {
            let _ = writeln!(
                out,
                "dyegate_requests_total{{env_tag=\"other\",route=\"{}\",status_class=\"{c}\",upstream_group=\"none\"}} {}",
                esc(route),
                load(&r.reject_requests[i])
            );
        }
    }
    for (i, c) in STATUS_CLASS_LABELS
        .iter()
        .take(HTTP_STATUS_CLASSES)
        .enumerate()
    {
        let _ = writeln!(
            out,
            "dyegate_requests_total{{env_tag=\"none\",route=\"none\",status_class=\"{c}\",upstream_group=\"none\"}} {}",
            load(&no_route[i])
        );
    }
}

/// `dyegate_decisions_total`: per pair and reason, and the rejections per route.
fn decisions(pairs: &Pairs<'_>, routes: &Routes<'_>, out: &mut String) {
    out.push_str("# HELP dyegate_decisions_total Routing decisions by route, chosen group and reason (tag, split, sticky, fallback, reject).\n# TYPE dyegate_decisions_total counter\n");
    for ((route, group), p) in pairs {
        for (i, reason) in REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "dyegate_decisions_total{{reason=\"{}\",route=\"{}\",upstream_group=\"{}\"}} {}",
                reason.as_str(),
                esc(route),
                esc(group),
                load(&p.decisions[i])
            );
        }
    }
    for (route, r) in routes {
        let _ = writeln!(
            out,
            "dyegate_decisions_total{{reason=\"reject\",route=\"{}\",upstream_group=\"none\"}} {}",
            esc(route),
            load(&r.reject)
        );
    }
}

/// `dyegate_request_duration_seconds`: the histogram of each pair, buckets cumulated.
fn durations(pairs: &Pairs<'_>, out: &mut String) {
    out.push_str("# HELP dyegate_request_duration_seconds Request duration from request header to the end of the response.\n# TYPE dyegate_request_duration_seconds histogram\n");
    for ((route, group), p) in pairs {
        let labels = format!("route=\"{}\",upstream_group=\"{}\"", esc(route), esc(group));
        let h = &p.duration;
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += load(&h.buckets[i]);
            let _ = writeln!(
                out,
                "dyegate_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cum}"
            );
        }
        cum += load(&h.buckets[BUCKETS.len()]);
        let _ = writeln!(
            out,
            "dyegate_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cum}"
        );
        let _ = writeln!(
            out,
            "dyegate_request_duration_seconds_sum{{{labels}}} {}",
            load(&h.sum_nanos) as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "dyegate_request_duration_seconds_count{{{labels}}} {}",
            load(&h.count)
        );
    }
}

/// `dyegate_upstream_errors_total`: per target and kind.
fn upstream_errors(store: &Store, out: &mut String) {
    out.push_str("# HELP dyegate_upstream_errors_total Upstream errors by group, target and kind.\n# TYPE dyegate_upstream_errors_total counter\n");
    let mut targets: Vec<_> = store.targets.iter().collect();
    targets.sort_by(|a, b| a.0.cmp(b.0));
    for ((group, addr), kinds) in targets {
        for (i, k) in ERROR_KINDS.iter().enumerate() {
            let _ = writeln!(
                out,
                "dyegate_upstream_errors_total{{kind=\"{k}\",target=\"{addr}\",upstream_group=\"{}\"}} {}",
                esc(group),
                load(&kinds[i])
            );
        }
    }
}

/// The `dyegate_requests_total` series of a pair with `grpc_status`: while its group speaks
/// HTTP/2, `grpc_status="none"` of every tag and class from 0 (so a new gRPC canary reads 0)
/// and the other values once counted; afterwards, what was counted.
fn render_grpc(out: &mut String, route: &str, group: &str, p: &PairStats) {
    let h2 = p.h2.load(Ordering::Relaxed);
    let mut tags: Vec<(String, Arc<GrpcClasses>)> = lock(&p.grpc_tags).clone();
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    let (route, group) = (esc(route), esc(group));
    for (tag, classes) in &tags {
        for (i, c) in STATUS_CLASS_LABELS.iter().enumerate() {
            for (k, grpc) in GRPC_STATUS_LABELS.iter().enumerate() {
                let n = classes[i][k].load(Ordering::Relaxed);
                if n == 0 && !(h2 && k == GrpcStatus::NONE.index()) {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "dyegate_requests_total{{env_tag=\"{}\",grpc_status=\"{grpc}\",route=\"{route}\",status_class=\"{c}\",upstream_group=\"{group}\"}} {n}",
                    esc(tag),
                );
            }
        }
    }
}
