//! The shadow stage before a rollout's first step (`rollout.shadow`, state `shadowing`): the
//! canary gets share 0 of untagged traffic and a mirror of the route's requests set over the
//! table (a [`ShadowMirror`], data like a step's weights); its gates judge the canary's answers
//! to the copies (`crate::mirror::tally`); a breach does what any breach does before a user
//! reached the canary, a stage that held for `duration_ms` hands over to step 1. Pure: the
//! controller reads the tally and commits the moves.

use super::judge::{Evaluation, GroupFigures, Verdict};
use super::machine::{promote, Next};
use super::plan::{OnFailure, Plan};
use super::state::{Phase, RolloutState};
use crate::mirror::tally::ShadowCounts;
use crate::routing::ShadowMirror;
use serde::{Deserialize, Serialize};

/// `rollout.shadow` as the plan has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadow {
    /// Of the route's requests copied to the canary, in thousandths of a percent.
    pub share: u32,
    pub duration_ms: u64,
    pub gates: ShadowGates,
}

#[cfg(test)]
impl Shadow {
    /// A stage for tests: `share` (thousandths of a percent) for `duration_ms`, its gates
    /// judging the whole stage on `min_requests` copies at least, 5% failures at most, the
    /// 99th percentile, no latency or mismatch limit (set them on the result).
    pub fn for_tests(share: u32, duration_ms: u64, min_requests: u64) -> Shadow {
        Shadow {
            share,
            duration_ms,
            gates: ShadowGates {
                window_ms: duration_ms,
                min_requests,
                max_error_rate: Some(0.05),
                max_latency_ms: None,
                latency_percentile: 99.0,
                max_mismatch_rate: None,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShadowGates {
    /// The most of the stage its gates judge: its duration, at most [`MAX_WINDOW_MS`].
    pub window_ms: u64,
    pub min_requests: u64,
    pub max_error_rate: Option<f64>,
    pub max_latency_ms: Option<u64>,
    pub latency_percentile: f64,
    pub max_mismatch_rate: Option<f64>,
}

/// The shadow's figures an evaluation of the stage was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowFigures {
    /// Copies that ended (answered, failed, timed out) and the shadow's failures among them.
    pub copies: u64,
    pub errors: u64,
    /// Copies compared with the client's answer, and those that differed.
    pub compared: u64,
    pub mismatches: u64,
    /// At the gates' percentile, bucket upper bound.
    pub latency_ms: Option<u64>,
}

impl ShadowFigures {
    /// What `counts` show, the latency at `percentile`.
    pub fn of(counts: &ShadowCounts, percentile: f64) -> ShadowFigures {
        ShadowFigures {
            copies: counts.answers.requests,
            errors: counts.answers.errors,
            compared: counts.compared,
            mismatches: counts.mismatches,
            latency_ms: counts.answers.latency_ms(percentile),
        }
    }
}

impl Plan {
    /// The mirror the shadow stage sets over the route (`None` without a stage).
    pub fn shadow_mirror(&self) -> Option<ShadowMirror> {
        Some(ShadowMirror {
            group: self.canary_group().to_string(),
            share: self.shadow.as_ref()?.share,
        })
    }
}

/// The longest a stage's window reaches back: what the tally keeps.
pub const MAX_WINDOW_MS: u64 = 300_000;

/// The seconds the stage's gates judge at second `now` of a stage started at `started_ms`: the
/// whole stage so far, its last [`MAX_WINDOW_MS`] at most (a judgement that comes late loses no
/// answer of the stage).
pub fn span(started_ms: u64, now: u64) -> (u64, u64) {
    let n = MAX_WINDOW_MS / 1000;
    (now.saturating_sub(n).max(started_ms / 1000), now)
}

/// Judges the shadow's `counts` of the seconds `from..=to` against the stage's gates
/// (`canary`: the group's name).
pub fn judge(
    shadow: &Shadow,
    canary: &str,
    counts: &ShadowCounts,
    (from, to): (u64, u64),
) -> Evaluation {
    let g = &shadow.gates;
    let a = &counts.answers;
    let figures = ShadowFigures::of(counts, g.latency_percentile);
    let latency = figures.latency_ms;
    let mut gates = Vec::new();
    let mut gate = |name: &str, value: f64, limit: f64| {
        gates.push(Verdict {
            gate: name.into(),
            value,
            limit,
            ok: value <= limit,
        })
    };
    if let Some(max) = g.max_error_rate {
        gate("shadow_error_rate", a.error_rate(), max);
    }
    if let (Some(max), Some(l)) = (g.max_latency_ms, latency) {
        gate("shadow_latency", l as f64, max as f64);
    }
    if let Some(max) = g.max_mismatch_rate {
        let rate = match counts.compared {
            0 => 0.0,
            n => counts.mismatches as f64 / n as f64,
        };
        gate("shadow_mismatch_rate", rate, max);
    }
    Evaluation {
        at: crate::stamp::now_rfc3339(),
        window_ms: (to + 1).saturating_sub(from) * 1000,
        min_requests: g.min_requests,
        latency_percentile: g.latency_percentile,
        enough_traffic: a.requests >= g.min_requests,
        groups: vec![GroupFigures {
            group: canary.to_string(),
            canary: true,
            requests: a.requests,
            errors: a.errors,
            error_rate: a.error_rate(),
            latency_ms: latency,
        }],
        gates,
        prometheus: Vec::new(),
        shadow: Some(figures),
    }
}

/// One line for logs, the audit and the state's reason: the shadow gate and its figures.
pub fn describe(e: &Evaluation, f: &ShadowFigures, v: &Verdict) -> String {
    format!(
        "shadow gate {} breached: {:.4} > {} (canary's answers to {} copies: {} errors, {} mismatches of {} compared, p{} latency {} ms; window {} ms) before any untagged request reached the canary",
        v.gate.trim_start_matches("shadow_"),
        v.value,
        v.limit,
        f.copies,
        f.errors,
        f.mismatches,
        f.compared,
        e.latency_percentile,
        f.latency_ms.map_or("-".into(), |l| l.to_string()),
        e.window_ms
    )
}

/// The move that starts the stage (from `pending`, or a resume of a stage paused).
pub fn begin(plan: &Plan, why: Option<String>) -> Option<Next> {
    let s = plan.shadow.as_ref()?;
    let why = why.unwrap_or_else(|| {
        format!(
            "shadow stage: {}% of the route's requests copied to {} for {} ms, no untagged request",
            f64::from(s.share) / 1000.0,
            plan.canary_group(),
            s.duration_ms
        )
    });
    Some(Next::Apply(0, Phase::Shadowing, Some(why)))
}

/// What the gates' evaluation of the stage does to a rollout in `shadowing`; `None` = nothing
/// changes. A breach fails it (or pauses it, `on_failure: pause`); a stage that held for
/// `duration_ms` with `min_requests` answers in its window moves on as a promotion after step 0
/// would (step 1, or a wait for approval or confirmation), its mirror taken away in the same
/// commit.
pub fn next(plan: &Plan, s: &RolloutState, e: &Evaluation, now_ms: u64) -> Option<Next> {
    let shadow = plan.shadow.as_ref()?;
    if let Some((_, why)) = e.failure() {
        return Some(match plan.on_failure {
            OnFailure::Rollback => Next::Apply(0, Phase::Failed, Some(why)),
            OnFailure::Pause => Next::Set(Phase::Paused, Some(why)),
        });
    }
    let over = now_ms.saturating_sub(s.step_started_ms) >= shadow.duration_ms;
    if !over || !e.enough_traffic {
        return None;
    }
    let held = e.shadow.as_ref().map_or(String::new(), |f| {
        format!(
            ": {} copies, {} errors, {} mismatches of {} compared",
            f.copies, f.errors, f.mismatches, f.compared
        )
    });
    let why = format!("shadow stage held for {} ms{held}", shadow.duration_ms);
    Some(match promote(plan, 0) {
        Next::Apply(n, phase, _) => Next::Apply(n, phase, Some(why)),
        Next::Set(phase, then) => Next::Apply(
            0,
            phase,
            Some(format!("{why}; {}", then.unwrap_or_default())),
        ),
    })
}

#[cfg(test)]
#[path = "shadow_tests.rs"]
mod tests;
