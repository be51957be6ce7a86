//! `routes[i].rollout`: a progressive delivery plan for the route's split, as a serde struct
//! mirroring the file, and its cross-field checks (`validate_rollout`). The plan itself is run
//! by `crate::rollout`.

use super::containment::{Millis, Percent};
use super::error::Issue;
use super::model::RouteConfig;
use schemars::JsonSchema;
use serde::Deserialize;

/// Longest gate window accepted: the windowed statistics keep one slot per second.
pub const MAX_WINDOW_MS: u64 = 300_000;

/// `routes[i].rollout`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// A group of this route's split.
    pub canary: String,
    /// The canary's share of untagged traffic at each step, percent, strictly increasing.
    pub steps: Vec<Percent>,
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
}

/// `routes[i].rollout.gates`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatesConfig {
    /// Sliding window the gates judge; absent = `step_ms` (at most [`MAX_WINDOW_MS`]).
    #[serde(default)]
    pub window_ms: Option<u64>,
    /// Canary requests in the window before it can be judged or promoted [100].
    #[serde(default)]
    pub min_requests: Option<u64>,
    /// Canary failures over requests in the window: 5xx, upstream errors and timeouts (also
    /// after the head: an answer that broke off), gRPC server errors.
    #[serde(default)]
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
                super::yaml::one_of(&groups)
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
        if s.0 == 0 {
            issues.push(Issue::new(
                format!("{path}.rollout.steps[{k}]"),
                "found 0, expected a share from 1 to 100",
            ));
        } else if k > 0 && s.0 <= r.steps[k - 1].0 {
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
        if !r.steps.contains(s) {
            issues.push(Issue::new(
                format!("{path}.rollout.pause_before[{k}]"),
                format!("found {}, expected one of the steps", s.0),
            ));
        }
    }
    validate_gates(&r.gates, &p("gates"), issues);
}

fn validate_gates(g: &GatesConfig, path: &str, issues: &mut Vec<Issue>) {
    let mut issue = |f: &str, m: String| issues.push(Issue::new(format!("{path}.{f}"), m));
    if let Some(w) = g.window_ms {
        if !(1..=MAX_WINDOW_MS).contains(&w) {
            issue(
                "window_ms",
                format!(
                    "found {w}, expected a whole number of milliseconds from 1 to {MAX_WINDOW_MS}"
                ),
            );
        }
    }
    if g.min_requests == Some(0) {
        issue(
            "min_requests",
            "found 0, expected a whole number >= 1".into(),
        );
    }
    if let Some(e) = g.max_error_rate {
        if !(0.0..=1.0).contains(&e) {
            issue(
                "max_error_rate",
                format!("found {e}, expected a fraction from 0 to 1"),
            );
        }
    }
    if let Some(q) = g.latency_percentile {
        if !(q > 0.0 && q <= 100.0) {
            issue(
                "latency_percentile",
                format!("found {q}, expected a percentile above 0 and at most 100"),
            );
        }
    }
    if let Some(x) = g.max_latency_ratio {
        if !(x.is_finite() && x > 0.0) {
            issue(
                "max_latency_ratio",
                format!("found {x}, expected a ratio above 0"),
            );
        }
    }
    if g.max_error_rate.is_none() && g.max_latency_ms.is_none() && g.max_latency_ratio.is_none() {
        issues.push(Issue::new(
            path.to_string(),
            "found no gate, expected at least one of max_error_rate, max_latency_ms, max_latency_ratio",
        ));
    }
}
