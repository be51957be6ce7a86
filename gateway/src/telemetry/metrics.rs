//! Prometheus metrics, labelled by route, group, tag and routing version.
//!
//! Recording is lock-free: when a table is applied, every series it can produce is created (so
//! a young canary reads 0, not "no data") and handles to their atomic counters are stored in a
//! [`TableMetrics`] next to the table; a request only does atomic adds on handles found by
//! index. Counters live in a store keyed by (route, group), so they keep counting across reloads
//! and rollbacks. Label values are bounded by the configuration: `env_tag` is a configured tag,
//! `none` or `other`. Requests to a group spoken to over HTTP/2 (`protocol: h2` or `h2c`) are
//! counted with a `grpc_status` label too (one of 19 values, see [`super::grpc_status`]). A routed
//! request's `status_class` is its status's class or `error` ([`super::status_class`]); dyegate's
//! own answers (no route, a refused tag) have only the five HTTP classes.
//!
//! The per-route families are rendered from those atomics straight into the text format: going
//! through `prometheus` metric vectors costs a hashed, locked lookup per series and a protobuf
//! per series at scrape time, which at 10,000 routes (about 800,000 series) meant seconds per
//! reload and half a gigabyte of memory. The process-wide families (routing version, reloads,
//! drops, process metrics) are ordinary `prometheus` metrics in one registry, appended to the
//! same scrape.

use super::grpc_status::{GrpcStatus, GRPC_STATUS_COUNT};
use super::labels::{ResultLabel, StateWrite, TriggerLabel};
use super::status_class::STATUS_CLASS_COUNT;
use super::status_class::{StatusClass, HTTP_STATUS_CLASSES};
use crate::routing::{Carried, Group, GroupId, Reason, Route, RouteTable, TargetEntry};
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

mod text;
mod totals;

pub use totals::PairTotal;

/// Latency buckets from 1 ms to 30 s.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const REASONS: [Reason; 4] = [Reason::Tag, Reason::Split, Reason::Sticky, Reason::Fallback];
/// Kinds of upstream errors.
pub const ERROR_KINDS: [&str; 4] = ["connect_refused", "timeout", "reset", "other"];
/// Label value for "no tag".
pub const NO_TAG: &str = "none";
/// Label value for a tag the route does not configure.
pub const OTHER_TAG: &str = "other";

/// Routed requests per status class (`error` included).
type Classes = [AtomicU64; STATUS_CLASS_COUNT];
/// Per status class, per `grpc_status` value.
type GrpcClasses = [[AtomicU64; GRPC_STATUS_COUNT]; STATUS_CLASS_COUNT];
/// dyegate's own answers per HTTP status class.
type AnswerClasses = [AtomicU64; HTTP_STATUS_CLASSES];
/// Upstream errors of one target, per kind of [`ERROR_KINDS`].
type ErrorKinds = [AtomicU64; 4];

/// A latency histogram on atomics (per-bucket counts; cumulated when rendered).
#[derive(Default)]
struct Histo {
    buckets: [AtomicU64; 15],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histo {
    fn observe(&self, seconds: f64) {
        let i = BUCKETS.partition_point(|b| *b < seconds);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The counters of one (route, group) pair.
#[derive(Default)]
struct PairStats {
    /// Tag label → counts per status class. Only touched when a table is built or rendered.
    tags: Mutex<Vec<(String, Arc<Classes>)>>,
    /// The same with a `grpc_status` label, for a group spoken to over HTTP/2.
    grpc_tags: Mutex<Vec<(String, Arc<GrpcClasses>)>>,
    /// Whether the group speaks HTTP/2 in the latest table (its series carry `grpc_status`).
    h2: AtomicBool,
    decisions: [AtomicU64; 4],
    duration: Histo,
    /// The last seconds, for a rollout's gates; made when a rollout first asks for it.
    window: OnceLock<Arc<super::window::Window>>,
}

impl PairStats {
    fn tag(&self, tag: &str) -> Arc<Classes> {
        let mut tags = lock(&self.tags);
        if let Some((_, c)) = tags.iter().find(|(t, _)| t == tag) {
            return c.clone();
        }
        let c = Arc::new(Classes::default());
        tags.push((tag.to_string(), c.clone()));
        c
    }

    fn grpc_tag(&self, tag: &str) -> Arc<GrpcClasses> {
        let mut tags = lock(&self.grpc_tags);
        if let Some((_, c)) = tags.iter().find(|(t, _)| t == tag) {
            return c.clone();
        }
        let c: Arc<GrpcClasses> = Arc::new(Default::default());
        tags.push((tag.to_string(), c.clone()));
        c
    }
}

#[derive(Default)]
struct RouteStats {
    /// decisions_total{reason="reject",upstream_group="none"}
    reject: AtomicU64,
    /// requests_total{upstream_group="none",env_tag="other"} by status class
    reject_requests: AnswerClasses,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[derive(Default)]
struct Store {
    pairs: HashMap<(String, String), Arc<PairStats>>,
    routes: HashMap<String, Arc<RouteStats>>,
    targets: HashMap<(String, SocketAddr), Arc<ErrorKinds>>,
}

/// The registry, the per-route store and the process-wide metrics.
pub struct Metrics {
    registry: Registry,
    store: Arc<Mutex<Store>>,
    no_route: Arc<AnswerClasses>,
    routing_version: IntGauge,
    reloads: IntCounterVec,
    state_write_errors: IntCounterVec,
    last_success: IntGauge,
    spans_dropped: IntCounter,
    spans_dropped_source: OnceLock<Arc<AtomicU64>>,
    access_log_dropped: IntCounter,
    access_log_dropped_source: OnceLock<Arc<AtomicU64>>,
    process: OnceLock<()>,
    source_connected: OnceLock<IntGauge>,
    containment: Arc<super::ContainmentMetrics>,
    dns: Arc<super::DnsMetrics>,
    /// Mirrored copies' answers per second, for rollouts' shadow stages.
    shadow_tally: Arc<crate::mirror::tally::Tally>,
}

impl Metrics {
    /// Defines every family. Panics only on a malformed definition (a programming error caught
    /// by the unit tests), never on input.
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
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
        let reloads = IntCounterVec::new(
            Opts::new(
                "dyegate_reloads_total",
                "Reload attempts by trigger and result.",
            ),
            &["trigger", "result"],
        )
        .unwrap_or_else(|e| panic!("dyegate_reloads_total: {e}"));
        let _ = registry.register(Box::new(reloads.clone()));
        for trigger in TriggerLabel::ALL {
            for result in ResultLabel::ALL {
                reloads.with_label_values(&[trigger.as_str(), result.as_str()]);
            }
        }
        let state_write_errors = IntCounterVec::new(
            Opts::new(
                "dyegate_state_write_errors_total",
                "Writes of state that failed: history (history.json), version (versions/N.yaml), audit (audit log line), rollouts (rollouts.json).",
            ),
            &["what"],
        )
        .unwrap_or_else(|e| panic!("dyegate_state_write_errors_total: {e}"));
        let _ = registry.register(Box::new(state_write_errors.clone()));
        for what in StateWrite::ALL {
            state_write_errors.with_label_values(&[what.as_str()]);
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
            store: Arc::default(),
            no_route: Arc::new(AnswerClasses::default()),
            routing_version,
            reloads,
            state_write_errors,
            last_success,
            spans_dropped,
            spans_dropped_source: OnceLock::new(),
            access_log_dropped,
            access_log_dropped_source: OnceLock::new(),
            process: OnceLock::new(),
            source_connected: OnceLock::new(),
            containment: Arc::default(),
            dns: Arc::default(),
            shadow_tally: Arc::default(),
        })
    }

    /// Creates every series of a table (at 0 when new) and returns its handles. With
    /// `previous` (the table it replaces, that table's handles, and what it carries over from
    /// it), routes and groups carried over keep their handles.
    pub fn for_table(
        &self,
        table: &RouteTable,
        previous: Option<(&RouteTable, &TableMetrics, &Carried)>,
    ) -> TableMetrics {
        // The previous handles of a carried-over route or group, when it is that table's own.
        let old_route = |i: usize, r: &Arc<Route>| {
            let (t, m, carried) = previous?;
            let j = carried.route(i)?;
            Arc::ptr_eq(t.routes().get(j)?, r)
                .then(|| m.routes.get(j))?
                // A group that changed protocol changes whether the route counts grpc_status.
                .filter(|m| m.speaks_h2_as(table))
        };
        let old_group = |i: usize, g: &Arc<Group>| {
            let (t, m, carried) = previous?;
            let j = carried.group(i)?;
            Arc::ptr_eq(t.groups().get(j)?, g).then(|| m.targets.get(j))?
        };
        // The addresses written in the file; those DNS names give are found in the store on
        // their first error (errors are rare; a name's addresses change without a table).
        // The store is locked per entry, not for the whole table: a scrape never waits for the
        // series of a 10,000-route table to be made.
        let routes = (table.routes().iter().enumerate())
            .map(|(i, r)| match old_route(i, r) {
                Some(m) => Arc::clone(m),
                None => Arc::new(route_series(&mut lock(&self.store), table, r)),
            })
            .collect();
        let targets = (table.groups().iter().enumerate())
            .map(|(i, g)| match old_group(i, g) {
                Some(m) => Arc::clone(m),
                None => {
                    let mut store = lock(&self.store);
                    Arc::new(TargetMetrics {
                        group: g.name.clone(),
                        fixed: (g.entries().iter())
                            .filter_map(|e| match e {
                                TargetEntry::Addr(t) => Some(t.addr),
                                TargetEntry::Name(_) => None,
                            })
                            .map(|addr| {
                                let key = (g.name.to_string(), addr);
                                (addr, store.targets.entry(key).or_default().clone())
                            })
                            .collect(),
                    })
                }
            })
            .collect();
        TableMetrics {
            routes,
            targets,
            no_route: self.no_route.clone(),
            store: self.store.clone(),
        }
    }

    /// The windowed statistics of a (route, group) pair, made on first use: requests of tables
    /// committed before and after share them (the pair's handles are resolved at commit).
    pub fn rollout_window(&self, route: &str, group: &str) -> Arc<super::window::Window> {
        let pair = (lock(&self.store).pairs)
            .entry((route.to_string(), group.to_string()))
            .or_default()
            .clone();
        pair.window.get_or_init(Default::default).clone()
    }

    /// Adds families kept elsewhere (e.g. the downstream limits' counters) to the registry.
    pub fn register(&self, collectors: Vec<Box<dyn prometheus::core::Collector>>) {
        for c in collectors {
            let _ = self.registry.register(c);
        }
    }

    /// The failure-handling families (timeouts, retries, health), rendered with these.
    pub fn containment(&self) -> &Arc<super::ContainmentMetrics> {
        &self.containment
    }

    /// The mirrored copies' answers per (route, shadow group) and second: fed by the mirror
    /// metrics, judged by a rollout's shadow stage.
    pub fn shadow_tally(&self) -> &Arc<crate::mirror::tally::Tally> {
        &self.shadow_tally
    }

    /// The DNS families (changes, failed lookups, addresses of the groups' DNS names).
    pub fn dns(&self) -> &Arc<super::DnsMetrics> {
        &self.dns
    }

    /// `dyegate_source_connected`: 1 while the routing source (etcd) answers, 0 while it does
    /// not. Registered on first use: a gateway on a routes file has no such series.
    pub fn set_source_connected(&self, connected: bool) {
        let g = self.source_connected.get_or_init(|| {
            let g = IntGauge::new(
                "dyegate_source_connected",
                "1 while the routing source (etcd) is connected and watched, 0 while it is not.",
            )
            .unwrap_or_else(|e| panic!("dyegate_source_connected: {e}"));
            let _ = self.registry.register(Box::new(g.clone()));
            g
        });
        g.set(i64::from(connected));
    }

    pub fn set_routing_version(&self, version: u64) {
        self.routing_version.set(version as i64);
    }

    pub fn reload(&self, trigger: TriggerLabel, result: ResultLabel, success_unix: Option<u64>) {
        (self.reloads)
            .with_label_values(&[trigger.as_str(), result.as_str()])
            .inc();
        if let Some(t) = success_unix {
            self.last_success.set(t as i64);
        }
    }

    /// A write of state failed.
    pub fn state_write_error(&self, what: StateWrite) {
        (self.state_write_errors)
            .with_label_values(&[what.as_str()])
            .inc();
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
        let mut out = String::with_capacity(64 * 1024);
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
        // The registry (routing version, reload counters) is read before the per-route series:
        // a table's series exist before its version is set, so a scrape that shows version N
        // also shows every series of table N, even when a reload lands during the scrape.
        let gathered = self.registry.gather();
        text::render_routes(
            &lock(&self.store),
            &self.no_route,
            &self.containment,
            &mut out,
        );
        self.containment.render(&mut out);
        self.dns.render(&mut out);
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&gathered, &mut buf) {
            let _ = writeln!(out, "# encoding error: {e}");
        }
        out.push_str(&String::from_utf8_lossy(&buf));
        out
    }
}

struct GroupMetrics {
    group: GroupId,
    /// Tag label → counts per status class.
    by_tag: Vec<(String, Arc<Classes>)>,
    /// For a group spoken to over HTTP/2, the same tags' counts with `grpc_status` (counted
    /// instead of `by_tag`); empty otherwise.
    grpc_by_tag: Vec<Arc<GrpcClasses>>,
    pair: Arc<PairStats>,
}

struct RouteMetrics {
    groups: Vec<GroupMetrics>,
    route: Arc<RouteStats>,
}

impl RouteMetrics {
    /// Whether each group's handles count `grpc_status` exactly when `table` says it speaks
    /// HTTP/2.
    fn speaks_h2_as(&self, table: &RouteTable) -> bool {
        self.groups.iter().all(|g| {
            let h2 = table
                .group(g.group)
                .is_some_and(|x| x.transport.protocol.is_h2());
            h2 != g.grpc_by_tag.is_empty()
        })
    }
}

/// The error counters of one group's targets.
struct TargetMetrics {
    group: Arc<str>,
    /// The `IP:PORT` targets: (address, counters per error kind).
    fixed: Vec<(SocketAddr, Arc<ErrorKinds>)>,
}

/// The handles of one table's series, indexed like the table. Shared (`Arc`) so a route or group
/// carried over unchanged into the next table keeps its handles without looking them up again.
pub struct TableMetrics {
    routes: Vec<Arc<RouteMetrics>>,
    /// Per group id.
    targets: Vec<Arc<TargetMetrics>>,
    no_route: Arc<AnswerClasses>,
    /// Where the series of targets a DNS name gave are made, on their first error.
    store: Arc<Mutex<Store>>,
}

/// The index of an answer dyegate wrote itself in [`AnswerClasses`].
fn answer_class(status: u16) -> usize {
    StatusClass::of(status).index()
}

impl TableMetrics {
    /// Records a finished routed request (to a group spoken to over HTTP/2: with
    /// `grpc_status="none"`).
    pub fn request(
        &self,
        route: usize,
        group: GroupId,
        tag: Option<&str>,
        reason: Reason,
        class: StatusClass,
        seconds: f64,
    ) {
        self.request_grpc(route, group, tag, reason, class, seconds, GrpcStatus::NONE);
    }

    /// Records a finished routed request with the `grpc-status` its upstream answered (counted
    /// under `grpc_status` when the group speaks HTTP/2, as [`Self::request`] otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn request_grpc(
        &self,
        route: usize,
        group: GroupId,
        tag: Option<&str>,
        reason: Reason,
        class: StatusClass,
        seconds: f64,
        grpc: GrpcStatus,
    ) {
        let Some(g) = self
            .routes
            .get(route)
            .and_then(|r| r.groups.iter().find(|g| g.group == group))
        else {
            return;
        };
        let label = tag.unwrap_or(NO_TAG);
        let at = g
            .by_tag
            .iter()
            .position(|(t, _)| t == label)
            .or_else(|| g.by_tag.iter().position(|(t, _)| t == OTHER_TAG));
        if let Some(i) = at {
            if g.grpc_by_tag.is_empty() {
                if let Some((_, c)) = g.by_tag.get(i) {
                    c[class.index()].fetch_add(1, Ordering::Relaxed);
                }
            } else if let Some(c) = g.grpc_by_tag.get(i) {
                if let Some(n) = c[class.index()].get(grpc.index()) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let r = match reason {
            Reason::Tag => Some(0),
            Reason::Split => Some(1),
            Reason::Sticky => Some(2),
            Reason::Fallback => Some(3),
            // Counted by `ContainmentMetrics::decision` (a series created when it first moves).
            Reason::FallbackUnhealthy | Reason::NoHealthyTarget | Reason::CircuitOpen => None,
        };
        if let Some(r) = r {
            g.pair.decisions[r].fetch_add(1, Ordering::Relaxed);
        }
        g.pair.duration.observe(seconds);
        if let Some(w) = g.pair.window.get() {
            // A gRPC call that failed answers HTTP 200 with the failure in `grpc-status`; an
            // answer that broke after its head is `error`, whatever its status said.
            w.record_outcome(class.is_failure() || grpc.is_server_error(), seconds);
        }
    }

    /// Records a request rejected for its unknown tag.
    pub fn rejected(&self, route: usize, status: u16) {
        if let Some(r) = self.routes.get(route) {
            r.route.reject.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = r.route.reject_requests.get(answer_class(status)) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records a request no route matched (404).
    pub fn no_route(&self, status: u16) {
        if let Some(c) = self.no_route.get(answer_class(status)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records an upstream error of a target.
    pub fn upstream_error(&self, group: GroupId, target: SocketAddr, kind: usize) {
        let Some(g) = self.targets.get(group) else {
            return;
        };
        let count = |c: &ErrorKinds| {
            if let Some(c) = c.get(kind) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        };
        match g.fixed.iter().find(|(a, _)| *a == target) {
            Some((_, c)) => count(c),
            // A target a DNS name gave.
            None => count(
                lock(&self.store)
                    .targets
                    .entry((g.group.to_string(), target))
                    .or_default(),
            ),
        }
    }
}

/// The series of one route: per group it can reach (split and tags), per tag.
fn route_series(store: &mut Store, table: &RouteTable, r: &Route) -> RouteMetrics {
    let group_name = |g: GroupId| table.group(g).map_or("none", |g| g.name.as_ref());
    let h2 = |g: GroupId| table.group(g).is_some_and(|g| g.transport.protocol.is_h2());
    let mut groups: Vec<GroupId> = r.split.groups.clone();
    for (_, g) in &r.dye.tags {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    let per_group = groups
        .iter()
        .map(|g| {
            let pair = store
                .pairs
                .entry((r.name.to_string(), group_name(*g).to_string()))
                .or_default()
                .clone();
            let mut by_tag = vec![
                (NO_TAG.to_string(), pair.tag(NO_TAG)),
                (OTHER_TAG.to_string(), pair.tag(OTHER_TAG)),
            ];
            for (t, tg) in &r.dye.tags {
                if tg == g {
                    by_tag.push((t.to_string(), pair.tag(t)));
                }
            }
            pair.h2.store(h2(*g), Ordering::Relaxed);
            let grpc_by_tag = if h2(*g) {
                by_tag.iter().map(|(t, _)| pair.grpc_tag(t)).collect()
            } else {
                Vec::new()
            };
            GroupMetrics {
                group: *g,
                by_tag,
                grpc_by_tag,
                pair,
            }
        })
        .collect();
    RouteMetrics {
        groups: per_group,
        route: store.routes.entry(r.name.to_string()).or_default().clone(),
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
