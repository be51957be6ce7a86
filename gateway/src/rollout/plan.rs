//! The plan of one route's rollout as compile produces it from the table (see
//! `config::table::compile_rollout`): its split as written, the steps and the gates; the weights of
//! each step; and the fingerprint that tells whether a new table left the route's `split` and
//! `rollout` as they were.

use super::hooks::Hooks;
use super::prometheus::PromGate;
use crate::routing::MAX_WEIGHT;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What a breach does.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Canary share to 0, state `failed`.
    #[default]
    Rollback,
    /// Hold the current step, state `paused`.
    Pause,
}

/// The plans of a table, by route (compiled by `config::table::compile_rollout`).
pub type Plans = BTreeMap<String, Plan>;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub route: String,
    /// The split's groups and weights as the file has them.
    pub groups: Vec<String>,
    pub base: Vec<u32>,
    pub canary: usize,
    pub steps: Vec<u8>,
    pub step_ms: u64,
    pub pause_before: Vec<u8>,
    pub gates: Gates,
    pub on_failure: OnFailure,
    /// The shadow stage before step 1 (`rollout.shadow`).
    pub shadow: Option<super::shadow::Shadow>,
    /// `confirm_step` and `events` (not part of the fingerprint: an edit of a hook keeps the
    /// rollout where it is).
    pub hooks: Hooks,
    /// sha256 of the route's `split` and `rollout` (but its hooks) in the file.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gates {
    pub window_ms: u64,
    pub min_requests: u64,
    pub max_error_rate: Option<f64>,
    pub max_latency_ms: Option<u64>,
    pub latency_percentile: f64,
    pub max_latency_ratio: Option<f64>,
    /// Queries against a Prometheus HTTP API, judged on their last reading.
    pub prometheus: Vec<PromGate>,
}

impl Plan {
    pub fn canary_group(&self) -> &str {
        &self.groups[self.canary]
    }

    /// The canary's share (percent) at `step` (1-based; 0 = none).
    pub fn share(&self, step: usize) -> u8 {
        match step {
            0 => 0,
            s => self.steps.get(s - 1).copied().unwrap_or(100),
        }
    }

    /// The split's weights that give the canary `share` percent of untagged traffic, the other
    /// groups keeping their relative weights from the file: exactly when the numbers allow
    /// (canary = share x others' total, each other = its weight x (100 - share)), otherwise
    /// to 1/10,000.
    pub fn weights(&self, share: u8) -> Vec<u32> {
        let s = u64::from(share.min(100));
        let mut others: Vec<u64> = (self.base.iter().enumerate())
            .map(|(i, w)| if i == self.canary { 0 } else { u64::from(*w) })
            .collect();
        if others.iter().all(|w| *w == 0) {
            // The file gives the others nothing: share the rest evenly.
            for (i, w) in others.iter_mut().enumerate() {
                *w = u64::from(i != self.canary);
            }
        }
        let total: u64 = others.iter().sum();
        let exact = s * total <= u64::from(MAX_WEIGHT) && total * 100 <= u64::from(MAX_WEIGHT);
        (others.iter().enumerate())
            .map(|(i, w)| {
                let v = match (i == self.canary, exact) {
                    (true, true) => s * total,
                    (false, true) => w * (100 - s),
                    (true, false) => s * 100,
                    (false, false) => (w * (100 - s) * 100 + total / 2) / total,
                };
                v as u32
            })
            .collect()
    }

    /// The canary's share (percent, rounded) of a split's weights.
    pub fn share_of(&self, weights: &[u32]) -> f64 {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let c = weights.get(self.canary).copied().unwrap_or(0);
        if total == 0 {
            0.0
        } else {
            100.0 * f64::from(c) / total as f64
        }
    }
}

/// A route `shop` ramping `canary` (stable 100 / canary 0) through 10, 50 and 100 percent, a
/// step a second, judged on a one-second window of at least 20 canary requests with at most 5%
/// errors: the plan the unit tests start from (each changes what it tests).
#[cfg(test)]
pub(crate) fn test_plan() -> Plan {
    Plan {
        route: "shop".into(),
        groups: vec!["stable".into(), "canary".into()],
        base: vec![100, 0],
        canary: 1,
        steps: vec![10, 50, 100],
        step_ms: 1000,
        pause_before: vec![],
        gates: Gates {
            window_ms: 1000,
            min_requests: 20,
            max_error_rate: Some(0.05),
            max_latency_ms: None,
            latency_percentile: 99.0,
            max_latency_ratio: None,
            prometheus: vec![],
        },
        on_failure: OnFailure::Rollback,
        shadow: None,
        hooks: Hooks::default(),
        fingerprint: "f".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(base: Vec<u32>, canary: usize) -> Plan {
        Plan {
            route: "shop".into(),
            groups: (0..base.len()).map(|i| format!("g{i}")).collect(),
            base,
            canary,
            steps: vec![5, 20, 50, 100],
            step_ms: 1000,
            pause_before: vec![],
            gates: Gates {
                window_ms: 1000,
                min_requests: 20,
                max_error_rate: Some(0.02),
                max_latency_ms: None,
                latency_percentile: 99.0,
                max_latency_ratio: None,
                prometheus: vec![],
            },
            on_failure: OnFailure::Rollback,
            shadow: None,
            hooks: Hooks::default(),
            fingerprint: String::new(),
        }
    }

    #[test]
    fn the_canary_gets_its_share_and_the_others_keep_their_ratio() {
        let p = plan(vec![60, 0, 40], 1);
        assert_eq!(p.weights(20), vec![4800, 2000, 3200]);
        assert_eq!(p.share_of(&p.weights(20)), 20.0);
        assert_eq!(p.weights(0), vec![6000, 0, 4000]);
        assert_eq!(p.weights(100), vec![0, 10000, 0]);
        let big = plan(vec![1_000_000, 0], 1);
        assert!((big.share_of(&big.weights(5)) - 5.0).abs() < 0.01);
        let none = plan(vec![0, 10], 1);
        assert_eq!(none.weights(50), vec![50, 50]);
    }

    #[test]
    fn sticky_ranges_only_grow_for_the_canary() {
        use dyegate_plugins::sticky::StickyRanges;
        let p = plan(vec![30, 0, 70], 1);
        let mut was: Vec<usize> = vec![];
        for share in [5u8, 20, 50, 100] {
            let r = StickyRanges::new(&p.weights(share)).expect("weights");
            let on: Vec<usize> = (0..10_000u32)
                .filter(|b| r.entry_for_bucket(*b) == 1)
                .map(|b| b as usize)
                .collect();
            assert!(was.iter().all(|b| on.contains(b)), "share {share}");
            was = on;
        }
        assert_eq!(was.len(), 10_000);
    }
}
