//! Counters of failure handling: timeouts, retries, the retry budget, the circuit breaker,
//! health checks, ejections and target health, plus the decisions that end a request before an
//! upstream answers (no healthy target, circuit open, unhealthy lane rejected).
//!
//! These count failures, not requests: a series is created when it first moves (or, for the
//! per-target families, when the target is first seen), under one lock, and rendered sorted.
//! Label values come from the configuration only (route, group, target) or from fixed lists.

use super::text_format::{esc, family};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Mutex;

/// What ended a request in a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimeoutKind {
    Connect,
    Read,
    Write,
    Total,
    /// A read of a stream (`stream_idle_ms`): an upgraded connection, a gRPC call.
    StreamIdle,
}

impl TimeoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Read => "read",
            TimeoutKind::Write => "write",
            TimeoutKind::Total => "total",
            TimeoutKind::StreamIdle => "stream_idle",
        }
    }
}

/// Result label of a health check.
pub const CHECK_RESULTS: [&str; 2] = ["success", "failure"];

#[derive(Default)]
struct Store {
    timeouts: BTreeMap<(String, TimeoutKind), u64>,
    retries: BTreeMap<(String, &'static str), u64>,
    budget_exhausted: BTreeMap<String, u64>,
    circuit_open: BTreeMap<String, u64>,
    rate_limited: BTreeMap<String, u64>,
    /// (route, group, reason) of decisions that answered without an upstream.
    decisions: BTreeMap<(String, String, &'static str), u64>,
    /// (group, target) → healthy.
    healthy: BTreeMap<(String, SocketAddr), bool>,
    checks: BTreeMap<(String, SocketAddr, &'static str), u64>,
    ejections: BTreeMap<(String, SocketAddr), u64>,
}

/// The failure-handling families; one per process, shared by the proxy and the health service.
#[derive(Default)]
pub struct ContainmentMetrics {
    store: Mutex<Store>,
}

fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K) {
    *map.entry(key).or_default() += 1;
}

impl ContainmentMetrics {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        match self.store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn timeout(&self, route: &str, kind: TimeoutKind) {
        bump(&mut self.store().timeouts, (route.to_string(), kind));
    }

    /// A retry was made; `reason` is one of the `retries.on` names.
    pub fn retry(&self, route: &str, reason: &'static str) {
        bump(&mut self.store().retries, (route.to_string(), reason));
    }

    pub fn budget_exhausted(&self, route: &str) {
        bump(&mut self.store().budget_exhausted, route.to_string());
    }

    pub fn circuit_open(&self, group: &str) {
        bump(&mut self.store().circuit_open, group.to_string());
    }

    /// A request answered 429 by the route's (or its lane's) rate limit.
    pub fn rate_limited(&self, route: &str) {
        bump(&mut self.store().rate_limited, route.to_string());
    }

    /// A decision that answered the request itself (`no_healthy_target`, `circuit_open`,
    /// `rejected`); `group` is the group it was about.
    pub fn decision(&self, route: &str, group: &str, reason: &'static str) {
        bump(
            &mut self.store().decisions,
            (route.to_string(), group.to_string(), reason),
        );
    }

    pub fn set_healthy(&self, group: &str, target: SocketAddr, healthy: bool) {
        self.store()
            .healthy
            .insert((group.to_string(), target), healthy);
    }

    /// Forgets the health series of targets no longer configured.
    pub fn retain_targets(&self, keep: impl Fn(&str, SocketAddr) -> bool) {
        self.store().healthy.retain(|(g, t), _| keep(g, *t));
    }

    pub fn health_check(&self, group: &str, target: SocketAddr, success: bool) {
        let result = CHECK_RESULTS[usize::from(!success)];
        bump(
            &mut self.store().checks,
            (group.to_string(), target, result),
        );
    }

    pub fn ejection(&self, group: &str, target: SocketAddr) {
        bump(&mut self.store().ejections, (group.to_string(), target));
    }

    /// The extra `dyegate_decisions_total` samples (rendered inside that family).
    pub fn render_decisions(&self, out: &mut String) {
        for ((route, group, reason), n) in &self.store().decisions {
            let _ = writeln!(
                out,
                "dyegate_decisions_total{{reason=\"{reason}\",route=\"{}\",upstream_group=\"{}\"}} {n}",
                esc(route),
                esc(group)
            );
        }
    }

    /// Every family of this module in the text format: what happened to requests, then what
    /// is known of targets.
    pub fn render(&self, out: &mut String) {
        let s = self.store();
        render_requests(&s, out);
        render_targets(&s, out);
    }
}

/// Timeouts, retries, spent budgets, open circuits, rate limits.
fn render_requests(s: &Store, out: &mut String) {
    family(
        out,
        "dyegate_timeouts_total",
        "counter",
        "Upstream timeouts by route and kind (connect, read, write, total, stream_idle).",
    );
    for ((route, kind), n) in &s.timeouts {
        let _ = writeln!(
            out,
            "dyegate_timeouts_total{{kind=\"{}\",route=\"{}\"}} {n}",
            kind.as_str(),
            esc(route)
        );
    }
    family(
        out,
        "dyegate_retries_total",
        "counter",
        "Retries on another target, by route and the failure that caused them.",
    );
    for ((route, reason), n) in &s.retries {
        let _ = writeln!(
            out,
            "dyegate_retries_total{{reason=\"{reason}\",route=\"{}\"}} {n}",
            esc(route)
        );
    }
    family(
        out,
        "dyegate_retries_budget_exhausted_total",
        "counter",
        "Retries not made because the route's retry budget was spent.",
    );
    for (route, n) in &s.budget_exhausted {
        let _ = writeln!(
            out,
            "dyegate_retries_budget_exhausted_total{{route=\"{}\"}} {n}",
            esc(route)
        );
    }
    family(
        out,
        "dyegate_circuit_open_total",
        "counter",
        "Requests answered 503 because the group had max_in_flight requests in flight.",
    );
    for (group, n) in &s.circuit_open {
        let _ = writeln!(
            out,
            "dyegate_circuit_open_total{{upstream_group=\"{}\"}} {n}",
            esc(group)
        );
    }
    family(
            out,
            "dyegate_rate_limited_total",
            "counter",
            "Requests answered 429 by the route's rate limit (limits, or dye.limits for tagged requests).",
        );
    for (route, n) in &s.rate_limited {
        let _ = writeln!(
            out,
            "dyegate_rate_limited_total{{route=\"{}\"}} {n}",
            esc(route)
        );
    }
}

/// Health, checks, ejections.
fn render_targets(s: &Store, out: &mut String) {
    family(
        out,
        "dyegate_target_healthy",
        "gauge",
        "1 when the target may be picked (healthy and not ejected), else 0.",
    );
    for ((group, target), healthy) in &s.healthy {
        let _ = writeln!(
            out,
            "dyegate_target_healthy{{target=\"{target}\",upstream_group=\"{}\"}} {}",
            esc(group),
            u8::from(*healthy)
        );
    }
    family(
        out,
        "dyegate_health_checks_total",
        "counter",
        "Active health checks by group, target and result.",
    );
    for ((group, target, result), n) in &s.checks {
        let _ = writeln!(out, "dyegate_health_checks_total{{result=\"{result}\",target=\"{target}\",upstream_group=\"{}\"}} {n}", esc(group));
    }
    family(
        out,
        "dyegate_ejections_total",
        "counter",
        "Targets ejected by outlier detection (consecutive failures of real requests).",
    );
    for ((group, target), n) in &s.ejections {
        let _ = writeln!(
            out,
            "dyegate_ejections_total{{target=\"{target}\",upstream_group=\"{}\"}} {n}",
            esc(group)
        );
    }
}
