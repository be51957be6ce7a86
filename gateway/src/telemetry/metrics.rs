//! Prometheus metrics, one registry, labelled by route, group, tag and routing version.
//!
//! Recording is lock-free: when a table is applied, every series it can produce is created (so
//! a young canary reads 0, not "no data") and its handles are stored in a [`TableMetrics`] next
//! to the table; a request then only does atomic adds on handles found by index. Label values
//! are bounded by the configuration: `env_tag` is a configured tag, `none` or `other`.

use crate::routing::{GroupId, Reason, RouteTable};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Latency buckets from 1 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const REASONS: [Reason; 4] = [Reason::Tag, Reason::Split, Reason::Sticky, Reason::Fallback];
/// Kinds of upstream errors.
pub const ERROR_KINDS: [&str; 4] = ["connect_refused", "timeout", "reset", "other"];
/// Label value for "no tag".
pub const NO_TAG: &str = "none";
/// Label value for a tag the route does not configure.
pub const OTHER_TAG: &str = "other";

/// The registry and the metric families.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    decisions: IntCounterVec,
    upstream_errors: IntCounterVec,
    routing_version: IntGauge,
    reloads: IntCounterVec,
    last_success: IntGauge,
    spans_dropped: IntCounter,
    spans_dropped_source: OnceLock<Arc<AtomicU64>>,
    access_log_dropped: IntCounter,
    access_log_dropped_source: OnceLock<Arc<AtomicU64>>,
    process: OnceLock<()>,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let v = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name} definition: {e}"));
    let _ = registry.register(Box::new(v.clone()));
    v
}

impl Metrics {
    /// Defines every family. Panics only on a malformed definition (a programming error caught
    /// by the unit tests), never on input.
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let requests = counter_vec(
            &registry,
            "dyegate_requests_total",
            "Requests by route, upstream group, dye tag and status class.",
            &["route", "upstream_group", "env_tag", "status_class"],
        );
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "dyegate_request_duration_seconds",
                "Request duration from request header to the end of the response.",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "upstream_group"],
        )
        .unwrap_or_else(|e| panic!("histogram definition: {e}"));
        let _ = registry.register(Box::new(duration.clone()));
        let decisions = counter_vec(
            &registry,
            "dyegate_decisions_total",
            "Routing decisions by route, chosen group and reason (tag, split, sticky, fallback, reject).",
            &["route", "upstream_group", "reason"],
        );
        let upstream_errors = counter_vec(
            &registry,
            "dyegate_upstream_errors_total",
            "Upstream errors by group, target and kind.",
            &["upstream_group", "target", "kind"],
        );
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("gauge {name}: {e}"));
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let routing_version = gauge(
            "dyegate_routing_version",
            "Version of the routing table in use.",
        );
        let last_success = gauge(
            "dyegate_last_reload_success_timestamp_seconds",
            "Unix time of the last applied reload or rollback.",
        );
        let reloads = counter_vec(
            &registry,
            "dyegate_reloads_total",
            "Reload attempts by trigger and result.",
            &["trigger", "result"],
        );
        for trigger in ["startup", "file", "sighup", "api", "rollback"] {
            for result in ["applied", "no_op", "failed", "rollback"] {
                reloads.with_label_values(&[trigger, result]);
            }
        }
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("counter {name}: {e}"));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let spans_dropped = counter(
            "dyegate_spans_dropped_total",
            "Spans dropped: the export queue was full or their export failed (collector down or slow).",
        );
        let access_log_dropped = counter(
            "dyegate_access_log_dropped_total",
            "Access log lines dropped because the writer could not keep up.",
        );
        Arc::new(Metrics {
            registry,
            requests,
            duration,
            decisions,
            upstream_errors,
            routing_version,
            reloads,
            last_success,
            spans_dropped,
            spans_dropped_source: OnceLock::new(),
            access_log_dropped,
            access_log_dropped_source: OnceLock::new(),
            process: OnceLock::new(),
        })
    }

    /// Creates every series of a table at 0 and returns its handles.
    pub fn for_table(&self, table: &RouteTable) -> TableMetrics {
        let group_name = |g: GroupId| table.group(g).map_or("none", |g| g.name.as_ref());
        let routes = table
            .routes()
            .iter()
            .map(|r| {
                let mut groups: Vec<GroupId> = r.split.groups.clone();
                for (_, g) in &r.dye.tags {
                    if !groups.contains(g) {
                        groups.push(*g);
                    }
                }
                let per_group = groups
                    .iter()
                    .map(|g| {
                        let gname = group_name(*g);
                        let mut tags: Vec<&str> = vec![NO_TAG, OTHER_TAG];
                        for (t, tg) in &r.dye.tags {
                            if tg == g {
                                tags.push(t.as_ref());
                            }
                        }
                        let by_tag = tags
                            .iter()
                            .map(|t| {
                                let counters = STATUS_CLASSES.map(|c| {
                                    self.requests.with_label_values(&[&r.name, gname, t, c])
                                });
                                (t.to_string(), counters)
                            })
                            .collect();
                        let decisions = REASONS.map(|reason| {
                            self.decisions
                                .with_label_values(&[&r.name, gname, reason.as_str()])
                        });
                        GroupMetrics {
                            group: *g,
                            by_tag,
                            decisions,
                            duration: self.duration.with_label_values(&[&r.name, gname]),
                        }
                    })
                    .collect();
                RouteMetrics {
                    groups: per_group,
                    reject: self
                        .decisions
                        .with_label_values(&[&r.name, "none", "reject"]),
                    reject_requests: self
                        .requests
                        .with_label_values(&[&r.name, "none", OTHER_TAG, "5xx"]),
                }
            })
            .collect();
        let targets = table
            .groups()
            .iter()
            .map(|g| {
                g.targets
                    .iter()
                    .map(|t| {
                        let addr = t.addr.to_string();
                        (
                            t.addr,
                            ERROR_KINDS.map(|k| {
                                self.upstream_errors.with_label_values(&[
                                    g.name.as_ref(),
                                    addr.as_str(),
                                    k,
                                ])
                            }),
                        )
                    })
                    .collect()
            })
            .collect();
        TableMetrics {
            routes,
            targets,
            no_route: STATUS_CLASSES.map(|c| {
                self.requests
                    .with_label_values(&["none", "none", NO_TAG, c])
            }),
        }
    }

    pub fn set_routing_version(&self, version: u64) {
        self.routing_version.set(version as i64);
    }

    pub fn reload(&self, trigger: &str, result: &str, success_unix: Option<u64>) {
        self.reloads.with_label_values(&[trigger, result]).inc();
        if let Some(t) = success_unix {
            self.last_success.set(t as i64);
        }
    }

    /// Where the dropped-span count lives (the tracer owns it).
    pub fn watch_spans_dropped(&self, source: Arc<AtomicU64>) {
        let _ = self.spans_dropped_source.set(source);
    }

    /// Where the dropped access-log-line count lives (the writer owns it).
    pub fn watch_access_log_dropped(&self, source: Arc<AtomicU64>) {
        let _ = self.access_log_dropped_source.set(source);
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        // Process metrics are for the serving process: registered on first scrape, after any
        // daemonizing fork.
        self.process.get_or_init(|| {
            let _ = self.registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        });
        for (source, counter) in [
            (self.spans_dropped_source.get(), &self.spans_dropped),
            (
                self.access_log_dropped_source.get(),
                &self.access_log_dropped,
            ),
        ] {
            if let Some(src) = source {
                let now = src.load(Ordering::Relaxed);
                let seen = counter.get();
                if now > seen {
                    counter.inc_by(now - seen);
                }
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            return format!("# encoding error: {e}\n");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

struct GroupMetrics {
    group: GroupId,
    /// Tag label value → counters per status class.
    by_tag: Vec<(String, [IntCounter; 5])>,
    decisions: [IntCounter; 4],
    duration: Histogram,
}

struct RouteMetrics {
    groups: Vec<GroupMetrics>,
    reject: IntCounter,
    reject_requests: IntCounter,
}

/// The handles of one table's series, indexed like the table.
pub struct TableMetrics {
    routes: Vec<RouteMetrics>,
    /// Per group id, per target: (address, counters per error kind).
    targets: Vec<Vec<(SocketAddr, [IntCounter; 4])>>,
    no_route: [IntCounter; 5],
}

fn class(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

impl TableMetrics {
    /// Records a finished routed request.
    pub fn request(
        &self,
        route: usize,
        group: GroupId,
        tag: Option<&str>,
        reason: Reason,
        status: u16,
        seconds: f64,
    ) {
        let Some(g) = self
            .routes
            .get(route)
            .and_then(|r| r.groups.iter().find(|g| g.group == group))
        else {
            return;
        };
        let label = match tag {
            None => NO_TAG,
            Some(t) => t,
        };
        let counters = g
            .by_tag
            .iter()
            .find(|(t, _)| t == label)
            .or_else(|| g.by_tag.iter().find(|(t, _)| t == OTHER_TAG));
        if let Some((_, c)) = counters {
            c[class(status)].inc();
        }
        let r = match reason {
            Reason::Tag => 0,
            Reason::Split => 1,
            Reason::Sticky => 2,
            Reason::Fallback => 3,
        };
        g.decisions[r].inc();
        g.duration.observe(seconds);
    }

    /// Records a request rejected for its unknown tag (503).
    pub fn rejected(&self, route: usize) {
        if let Some(r) = self.routes.get(route) {
            r.reject.inc();
            r.reject_requests.inc();
        }
    }

    /// Records a request no route matched (404).
    pub fn no_route(&self, status: u16) {
        self.no_route[class(status)].inc();
    }

    /// Records an upstream error of a target.
    pub fn upstream_error(&self, group: GroupId, target: SocketAddr, kind: usize) {
        if let Some((_, c)) = self
            .targets
            .get(group)
            .and_then(|ts| ts.iter().find(|(a, _)| *a == target))
        {
            if let Some(c) = c.get(kind) {
                c.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::routes_from_text;

    #[test]
    fn series_exist_at_zero_and_count() {
        let m = Metrics::new();
        let t = routes_from_text(
            "r.yaml",
            b"upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\n  c: { targets: [\"127.0.0.1:2\"] }\nroutes:\n  - { name: shop, dye: { tags: { canary: c } }, split: [{ upstream: s, weight: 9 }, { upstream: c, weight: 1 }] }\n".to_vec(),
        )
        .expect("valid")
        .table;
        let tm = m.for_table(&t);
        let text = m.render();
        assert!(text.contains(
            r#"dyegate_requests_total{env_tag="canary",route="shop",status_class="2xx",upstream_group="c"} 0"#
        ), "{text}");
        assert!(text.contains(
            r#"dyegate_decisions_total{reason="sticky",route="shop",upstream_group="s"} 0"#
        ));
        tm.request(0, 1, Some("canary"), Reason::Tag, 200, 0.003);
        tm.request(0, 0, Some("made-up"), Reason::Fallback, 502, 0.001);
        tm.upstream_error(0, "127.0.0.1:1".parse().expect("addr"), 0);
        let text = m.render();
        assert!(text.contains(
            r#"dyegate_requests_total{env_tag="canary",route="shop",status_class="2xx",upstream_group="c"} 1"#
        ));
        assert!(text.contains(
            r#"dyegate_requests_total{env_tag="other",route="shop",status_class="5xx",upstream_group="s"} 1"#
        ));
        assert!(text.contains(
            r#"dyegate_upstream_errors_total{kind="connect_refused",target="127.0.0.1:1",upstream_group="s"} 1"#
        ));
        assert!(text.contains(
            r#"dyegate_request_duration_seconds_count{route="shop",upstream_group="c"} 1"#
        ));
    }
}
