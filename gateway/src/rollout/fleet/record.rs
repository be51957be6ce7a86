//! What a fleet's rollout keys hold (JSON): the step a rollout sets over the table, and each
//! gateway's window of figures (in a shadow stage, with its tally of the canary's answers to
//! its copies). The state itself is the one a single gateway keeps
//! ([`RolloutState`](super::super::state::RolloutState)), its `fingerprint` the plan id.

use super::super::state::{MovedBy, Phase};
use crate::mirror::tally::ShadowCounts;
use crate::telemetry::window::{Figures, BUCKETS_MS};
use serde::{Deserialize, Serialize};

/// `PREFIX/rollouts/ROUTE/step`: the weights a rollout sets over the fleet's table, written in
/// the transaction of the move that changes them (a step, an abort, a resume), never
/// otherwise: the key's mod revision is the version every gateway serves them as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The plan id (hash of the route's `split` and `rollout`) the weights are for: a table
    /// whose plan differs does not get them.
    pub plan: String,
    pub step: usize,
    /// The canary's share, percent.
    pub share: u8,
    /// The route's split weights at that share.
    pub weights: Vec<u32>,
    /// The state the move went to.
    pub state: Phase,
    pub by: MovedBy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The gateway that wrote it: the driver, or the one a control was made on.
    pub gateway: String,
    /// The admin identity and client address of a control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl StepRecord {
    /// What the version it makes says of itself in its audit record (`rollout`).
    pub fn note(&self, route: &str, revision: u64) -> serde_json::Value {
        serde_json::json!({
            "route": route,
            "step": self.step,
            "canary_share": self.share,
            "state": self.state.as_str(),
            "by": self.by.as_str(),
            "reason": self.reason,
            "fleet": { "revision": revision, "written_by": self.gateway, "identity": self.identity, "client": self.client },
        })
    }
}

/// One group's counts in a window: requests, errors, and the latency buckets of
/// [`BUCKETS_MS`] (one more for the rest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
    pub buckets: Vec<u64>,
}

impl From<&Figures> for Counts {
    fn from(f: &Figures) -> Counts {
        // Trailing empty buckets are left out: most windows end well before 10 s.
        let used = f.buckets.iter().rposition(|b| *b > 0).map_or(0, |i| i + 1);
        Counts {
            requests: f.requests,
            errors: f.errors,
            buckets: f.buckets[..used].to_vec(),
        }
    }
}

impl Counts {
    /// The counts as figures (buckets past the known ones are added to the last).
    pub fn figures(&self) -> Figures {
        let mut f = Figures {
            requests: self.requests,
            errors: self.errors,
            ..Figures::default()
        };
        let last = BUCKETS_MS.len();
        for (i, n) in self.buckets.iter().enumerate() {
            f.buckets[i.min(last)] += n;
        }
        f
    }
}

/// `PREFIX/rollouts/ROUTE/figures/GATEWAY`: one gateway's window of the route's rollout,
/// published once a second while the rollout is judged, bound to the gateway's lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiguresRecord {
    pub gateway: String,
    /// The plan and the step (its start, Unix ms, as in the state) the window is of: a
    /// window of another step is never summed.
    pub plan: String,
    pub step_started_ms: u64,
    /// The seconds counted, `from..=to` (Unix).
    pub from: u64,
    pub to: u64,
    /// In the order of the plan's groups.
    pub groups: Vec<Counts>,
    /// This gateway took the canary to 0 on its own on this step while etcd was away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_abort: Option<LocalAbort>,
    /// In the shadow stage: the canary's answers to this gateway's copies over the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowRecord>,
}

/// One gateway's tally of the canary's answers to its copies in a shadow stage
/// (`crate::mirror::tally`), over the seconds `from..=to` (Unix) the stage's gates judge: the
/// copies that ended as `requests`, the canary's failures as `errors`, their latency buckets,
/// and the copies compared and those that differed. Summed over the fleet as counts and
/// buckets, never as rates or percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowRecord {
    pub from: u64,
    pub to: u64,
    pub answers: Counts,
    pub compared: u64,
    pub mismatches: u64,
}

impl ShadowRecord {
    pub fn new(counts: &ShadowCounts, (from, to): (u64, u64)) -> ShadowRecord {
        ShadowRecord {
            from,
            to,
            answers: Counts::from(&counts.answers),
            compared: counts.compared,
            mismatches: counts.mismatches,
        }
    }

    /// The tally as the stage's judge reads it.
    pub fn counts(&self) -> ShadowCounts {
        ShadowCounts {
            answers: self.answers.figures(),
            compared: self.compared,
            mismatches: self.mismatches,
        }
    }
}

/// A canary share taken to 0 by one gateway alone, judged on its own window while it could
/// not reach etcd: a local change, reported to the fleet once etcd answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalAbort {
    pub at: String,
    /// The step it was on (the state's `step_started_ms`).
    pub step_started_ms: u64,
    pub reason: String,
    /// The local version it made (`41.1`).
    pub version: String,
}

/// `PREFIX/rollouts/.gateways/GATEWAY`: a live gateway, bound to its lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub gateway: String,
    pub since: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::window::Window;

    #[test]
    fn counts_keep_the_figures_and_drop_trailing_empty_buckets() {
        let w = Window::new();
        for i in 0..40 {
            w.record_at(7, i % 10 == 0, if i < 30 { 3 } else { 180 });
        }
        let f = w.snapshot(7, 7);
        let c = Counts::from(&f);
        assert_eq!((c.requests, c.errors), (40, 4));
        assert_eq!(c.buckets.len(), 10, "{c:?}");
        assert_eq!(c.figures(), f);
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"requests":40,"errors":4,"buckets":[0,0,30,0,0,0,0,0,0,10]}"#
        );
    }

    #[test]
    fn a_shadow_tally_reads_back_as_the_judge_counts_it() {
        let w = Window::new();
        for i in 0..20 {
            w.record_at(7, i < 2, if i < 15 { 3 } else { 900 });
        }
        let counts = ShadowCounts {
            answers: w.snapshot(7, 7),
            compared: 18,
            mismatches: 5,
        };
        let r = ShadowRecord::new(&counts, (5, 7));
        assert_eq!((r.from, r.to, r.compared, r.mismatches), (5, 7, 18, 5));
        assert_eq!(r.counts(), counts);
        let json = serde_json::to_string(&r).unwrap_or_default();
        let back: ShadowRecord = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, r);
    }
}
