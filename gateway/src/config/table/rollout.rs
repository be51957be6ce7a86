//! `routes[i].rollout`: a progressive delivery plan for the route's split, as a serde struct
//! mirroring the file, and its cross-field checks (`validate_rollout`). The plan itself is run
//! by `crate::rollout`.

use super::model::RouteConfig;
use super::rollout_hooks::{
    validate_hooks, validate_prometheus, HooksConfig, PrometheusGateConfig,
};
use super::rollout_shadow::{validate_shadow, ShadowConfig};
use crate::config::error::Issue;
use crate::config::range::{bounded, Bound, Bounded, Millis, Percent};
use schemars::JsonSchema;
use serde::Deserialize;

/// `gates.window_ms`: at most 5 minutes, the windowed statistics keep one slot per second.
pub const WINDOW_BOUND: Bound<u64> = Bound::millis(1, 300_000);
/// `gates.min_requests`.
pub const MIN_REQUESTS_BOUND: Bound<u64> = Bound::at_least(1);
/// `gates.max_error_rate`: failures over requests.
pub const ERROR_RATE_BOUND: Bound<f64> = Bound::number(0.0, 1.0);
/// `gates.latency_percentile`.
pub const PERCENTILE_BOUND: Bound<f64> = Bound::above(0.0, 100.0);
/// `gates.max_latency_ratio`.
pub const LATENCY_RATIO_BOUND: Bound<f64> = Bound::above(0.0, f64::MAX);

/// A step of `steps`: the canary's share in percent, from 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step(pub u8);

impl Bounded for Step {
    const BOUND: Bound<u64> = Bound::percent(1, 100);
    fn from_checked(v: u64) -> Self {
        Step(v as u8)
    }
}
bounded!(Step, "Step");

/// `routes[i].rollout`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// A group of this route's split.
    pub canary: String,
    /// The canary's share of untagged traffic at each step, percent, strictly increasing.
    pub steps: Vec<Step>,
    /// Time spent on each step while the gates hold.
    pub step_ms: Millis,
    /// Steps (shares from `steps`) that wait for a manual promote before they are applied.
    #[serde(default)]
    pub pause_before: Vec<Percent>,
    /// The SLO gates judged every second over a sliding window of the canary's traffic.
    #[serde(default)]
    pub gates: GatesConfig,
    /// What a breached gate does: `rollback` (canary share to 0, state failed) or `pause`.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Webhooks: a confirmation before each automatic promotion, and every transition as an
    /// event. Only the driver calls them in a fleet.
    #[serde(default)]
    pub hooks: HooksConfig,
    /// A shadow stage before step 1: the canary gets copies of the route's requests only
    /// (share 0 of untagged traffic), judged on its answers to them.
    #[serde(default)]
    pub shadow: Option<ShadowConfig>,
}

/// `routes[i].rollout.gates`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatesConfig {
    /// Sliding window the gates judge; absent = `step_ms` (at most 300000, five minutes).
    #[serde(default)]
    #[schemars(range(min = WINDOW_BOUND.min, max = WINDOW_BOUND.max))]
    pub window_ms: Option<u64>,
    /// Canary requests in the window before it can be judged or promoted [100].
    #[serde(default)]
    #[schemars(range(min = MIN_REQUESTS_BOUND.min))]
    pub min_requests: Option<u64>,
    /// Canary failures over requests in the window: 5xx, upstream errors and timeouts (also
    /// after the head: an answer that broke off), gRPC server errors.
    #[serde(default)]
    #[schemars(range(min = ERROR_RATE_BOUND.min, max = ERROR_RATE_BOUND.max))]
    pub max_error_rate: Option<f64>,
    /// Canary latency at `latency_percentile` in the window.
    #[serde(default)]
    pub max_latency_ms: Option<Millis>,
    /// [99]
    #[serde(default)]
    pub latency_percentile: Option<f64>,
    /// Canary latency at the percentile over that of the route's other groups.
    #[serde(default)]
    pub max_latency_ratio: Option<f64>,
    /// Instant queries against a Prometheus HTTP API, each evaluated every `interval_ms` and
    /// compared with `max`/`min`; a breach does what any gate's does. Only the driver queries
    /// in a fleet.
    #[serde(default)]
    pub prometheus: Vec<PrometheusGateConfig>,
}

/// What a breach does (the compiled plan's type).
pub use crate::rollout::plan::OnFailure;

pub const DEFAULT_MIN_REQUESTS: u64 = 100;
pub const DEFAULT_PERCENTILE: f64 = 99.0;

/// The checks of a route's rollout against its split; `path` is `routes[i]`.
pub fn validate_rollout(route: &RouteConfig, path: &str, issues: &mut Vec<Issue>) {
    let Some(r) = &route.rollout else { return };
    let p = |f: &str| format!("{path}.rollout.{f}");
    let groups: Vec<&str> = route.split.iter().map(|e| e.upstream.as_str()).collect();
    if !groups.contains(&r.canary.as_str()) {
        issues.push(Issue::new(
            p("canary"),
            format!(
                "found {:?}, expected a group of this route's split ({})",
                r.canary,
                crate::config::yaml::one_of(&groups)
            ),
        ));
    } else if groups.len() < 2 {
        issues.push(Issue::new(
            p("canary"),
            format!(
                "found {:?} alone in the split, expected a split with another group beside the canary",
                r.canary
            ),
        ));
    }
    if r.steps.is_empty() {
        issues.push(Issue::new(
            p("steps"),
            "found an empty list, expected canary shares in percent, e.g. [5, 20, 50, 100]",
        ));
    }
    for (k, s) in r.steps.iter().enumerate() {
        if k > 0 && s.0 <= r.steps[k - 1].0 {
            issues.push(Issue::new(
                format!("{path}.rollout.steps[{k}]"),
                format!(
                    "found {} after {}, expected steps strictly increasing",
                    s.0,
                    r.steps[k - 1].0
                ),
            ));
        }
    }
    for (k, s) in r.pause_before.iter().enumerate() {
        if !r.steps.iter().any(|t| t.0 == s.0) {
            issues.push(Issue::new(
                format!("{path}.rollout.pause_before[{k}]"),
                format!("found {}, expected one of the steps", s.0),
            ));
        }
    }
    validate_gates(&r.gates, &p("gates"), issues);
    validate_hooks(&r.hooks, &p("hooks"), issues);
    if let Some(s) = &r.shadow {
        validate_shadow(s, &p("shadow"), issues);
        // From the first request: a rollout serves the file's weights until its first move.
        let given = route.split.iter().find(|e| e.upstream == r.canary);
        if let Some(w) = given.map(|e| e.weight.0).filter(|w| *w > 0) {
            issues.push(Issue::new(
                p("shadow"),
                format!(
                    "found the canary {:?} at weight {w} in the split, expected weight 0 with a shadow stage: the stage runs before any untagged request reaches the canary",
                    r.canary
                ),
            ));
        }
    }
}

fn validate_gates(g: &GatesConfig, path: &str, issues: &mut Vec<Issue>) {
    let p = |f: &str| format!("{path}.{f}");
    if let Some(w) = g.window_ms {
        WINDOW_BOUND.check(p("window_ms"), w, issues);
    }
    if let Some(n) = g.min_requests {
        MIN_REQUESTS_BOUND.check(p("min_requests"), n, issues);
    }
    if let Some(e) = g.max_error_rate {
        ERROR_RATE_BOUND.check(p("max_error_rate"), e, issues);
    }
    if let Some(q) = g.latency_percentile {
        PERCENTILE_BOUND.check(p("latency_percentile"), q, issues);
    }
    if let Some(x) = g.max_latency_ratio {
        LATENCY_RATIO_BOUND.check(p("max_latency_ratio"), x, issues);
    }
    validate_prometheus(&g.prometheus, &p("prometheus"), issues);
    if g.max_error_rate.is_none()
        && g.max_latency_ms.is_none()
        && g.max_latency_ratio.is_none()
        && g.prometheus.is_empty()
    {
        issues.push(Issue::new(
            path.to_string(),
            "found no gate, expected at least one of max_error_rate, max_latency_ms, max_latency_ratio, prometheus",
        ));
    }
}
