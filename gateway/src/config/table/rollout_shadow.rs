//! `routes[i].rollout.shadow`: the shadow stage before a rollout's first step, as serde structs
//! mirroring the file, and its checks (`validate_shadow`). The stage itself is run by
//! `crate::rollout` (state `shadowing`): the canary gets copies of the route's requests only,
//! judged on its answers to them (in a fleet, on the sum of every gateway's).

use super::mirror::PERCENT_BOUND;
use super::rollout::{ERROR_RATE_BOUND, MIN_REQUESTS_BOUND, PERCENTILE_BOUND};
use crate::config::error::Issue;
use crate::config::range::{Bound, Millis};
use schemars::JsonSchema;
use serde::Deserialize;

/// `shadow.gates.max_mismatch_rate`: mismatches over compared copies.
pub const MISMATCH_RATE_BOUND: Bound<f64> = Bound::number(0.0, 1.0);

/// `routes[i].rollout.shadow`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// Share of the route's requests (of the methods mirrored) copied to the canary during the
    /// stage, percent from 0.001 to 100 [100]. A `mirror` entry of the route to the canary
    /// group keeps its other settings; without one, the stage adds one with the defaults.
    #[serde(default = "hundred")]
    #[schemars(range(min = 0.001, max = 100.0))]
    pub percent: f64,
    /// How long the stage lasts while its gates hold (and it has `min_requests` answers);
    /// then step 1 begins.
    pub duration_ms: Millis,
    /// The gates judged every second on the canary's answers to the copies, over the stage
    /// (its last 300000 ms at most).
    pub gates: ShadowGatesConfig,
}

fn hundred() -> f64 {
    100.0
}

/// `routes[i].rollout.shadow.gates`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShadowGatesConfig {
    /// Copies the canary answered (or failed) in the window before it can be judged or the
    /// stage can end [100].
    #[serde(default)]
    #[schemars(range(min = MIN_REQUESTS_BOUND.min))]
    pub min_requests: Option<u64>,
    /// The canary's failures over copies: answers with a 5xx, refused or broken copies, copies
    /// past the mirror's `timeout_ms`.
    #[serde(default)]
    #[schemars(range(min = ERROR_RATE_BOUND.min, max = ERROR_RATE_BOUND.max))]
    pub max_error_rate: Option<f64>,
    /// The canary's time to a copy's whole answer at `latency_percentile`.
    #[serde(default)]
    pub max_latency_ms: Option<Millis>,
    /// [99]
    #[serde(default)]
    pub latency_percentile: Option<f64>,
    /// Copies whose answer differed from the client's (status or body) over copies compared
    /// (the mirror's `compare`).
    #[serde(default)]
    #[schemars(range(min = MISMATCH_RATE_BOUND.min, max = MISMATCH_RATE_BOUND.max))]
    pub max_mismatch_rate: Option<f64>,
}

/// The checks of a rollout's shadow stage; `path` is `routes[i].rollout.shadow`.
pub fn validate_shadow(s: &ShadowConfig, path: &str, issues: &mut Vec<Issue>) {
    let p = |f: &str| format!("{path}.{f}");
    PERCENT_BOUND.check(p("percent"), s.percent, issues);
    let g = &s.gates;
    let gp = |f: &str| format!("{path}.gates.{f}");
    if let Some(n) = g.min_requests {
        MIN_REQUESTS_BOUND.check(gp("min_requests"), n, issues);
    }
    if let Some(e) = g.max_error_rate {
        ERROR_RATE_BOUND.check(gp("max_error_rate"), e, issues);
    }
    if let Some(q) = g.latency_percentile {
        PERCENTILE_BOUND.check(gp("latency_percentile"), q, issues);
    }
    if let Some(m) = g.max_mismatch_rate {
        MISMATCH_RATE_BOUND.check(gp("max_mismatch_rate"), m, issues);
    }
    if g.max_error_rate.is_none() && g.max_latency_ms.is_none() && g.max_mismatch_rate.is_none() {
        issues.push(Issue::new(
            p("gates"),
            "found no gate, expected at least one of max_error_rate, max_latency_ms, max_mismatch_rate",
        ));
    }
}
