//! What one attempt to change the routing table did: the answer to the trigger, the audit
//! record, and the counters by result.

use super::trigger::Trigger;
use super::version_id::VersionId;
use crate::config::Timings;
use crate::telemetry::labels::{ResultLabel, StateWrite};
use serde::Serialize;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    NoOp,
    Failed,
    Rollback,
}

impl Outcome {
    /// The `result` label of `dyegate_reloads_total`.
    pub fn label(self) -> ResultLabel {
        match self {
            Outcome::Applied => ResultLabel::Applied,
            Outcome::NoOp => ResultLabel::NoOp,
            Outcome::Failed => ResultLabel::Failed,
            Outcome::Rollback => ResultLabel::Rollback,
        }
    }

    /// As in the `result` label of `dyegate_reloads_total`.
    pub fn as_str(self) -> &'static str {
        self.label().as_str()
    }
}

/// Who asked for a change made through the admin API (both absent for other triggers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The client address.
    pub client: Option<String>,
    /// The admin identity's name.
    pub identity: Option<String>,
}

impl ReloadReport {
    /// Who asked for this attempt.
    pub fn caller(&self) -> Caller {
        Caller {
            client: self.client.clone(),
            identity: self.identity.clone(),
        }
    }
}

/// The result of one attempt; also the audit record.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub time: String,
    #[serde(flatten)]
    pub trigger: Trigger,
    pub result: Outcome,
    pub version_before: VersionId,
    pub version_after: VersionId,
    pub sha256: Option<String>,
    pub diff_summary: Option<String>,
    pub diff: Vec<String>,
    pub errors: Vec<String>,
    /// Applied, with something to know: a DNS name new to the table that did not resolve
    /// before the commit (its group has no address from it until it does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The admin identity that asked (`admin.tokens[].name`, `admin.token`, or `anonymous`
    /// when the API has no token); absent for file, SIGHUP and startup triggers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Parse to swap, microseconds (applied and rollback only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_micros: Option<u64>,
    /// Where the parse-to-swap time went (applied only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
    /// Writes of state that failed while recording this attempt (history, version source,
    /// audit line): the change itself is in effect, its record is not complete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub state_errors: Vec<String>,
    /// What a rollout did with this attempt (its step and gate figures, or the rollouts a file
    /// edit started, restarted or ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<serde_json::Value>,
}

impl ReloadReport {
    /// An attempt that has not done anything yet, while `version` serves.
    pub fn new(trigger: Trigger, version: VersionId, caller: Caller) -> ReloadReport {
        ReloadReport {
            time: crate::stamp::now_rfc3339(),
            trigger,
            result: Outcome::Failed,
            version_before: version,
            version_after: version,
            sha256: None,
            diff_summary: None,
            diff: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            client: caller.client,
            identity: caller.identity,
            swap_micros: None,
            timings: None,
            state_errors: Vec::new(),
            rollout: None,
        }
    }
}

/// The last failed attempt, for `/status`. It stays after a later success, marked with that
/// success (`fixed_by`), and `/status` says how old it is (`age_s`, `attempts_since`): an error
/// shown without its age reads as a problem now.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub time: String,
    #[serde(serialize_with = "kind")]
    pub trigger: Trigger,
    pub errors: Vec<String>,
    /// When it failed, in unix seconds (`age_s` in `/status`).
    #[serde(skip)]
    pub at_unix: u64,
    /// Attempts counted up to and including this one (`attempts_since` in `/status`).
    #[serde(skip)]
    pub attempts_at: u64,
    /// The first later attempt that read the same source and succeeded; `None` while the
    /// source still fails (or has not been read again).
    pub fixed_by: Option<FixedBy>,
}

/// A later success of the source a [`LastError`] came from.
#[derive(Debug, Clone, Serialize)]
pub struct FixedBy {
    /// The version serving after it (for a no-op: the one that kept serving).
    pub version: VersionId,
    pub result: Outcome,
    #[serde(serialize_with = "kind")]
    pub trigger: Trigger,
    pub time: String,
}

impl LastError {
    /// Marks it fixed by `report` (a success) when that read the same source: the routes file
    /// (file, SIGHUP, API, startup), etcd, a rollback, or the same route's rollout.
    pub fn fixed(&mut self, report: &ReloadReport) {
        if self.fixed_by.is_none() && same_source(&self.trigger, &report.trigger) {
            self.fixed_by = Some(FixedBy {
                version: report.version_after,
                result: report.result,
                trigger: report.trigger.clone(),
                time: report.time.clone(),
            });
        }
    }

    /// As `/status` shows it: with `age_s` (at `now_unix`) and `attempts_since` (of `attempts`).
    pub fn to_json(&self, now_unix: u64, attempts: u64) -> serde_json::Value {
        let mut j = serde_json::json!(self);
        j["age_s"] = now_unix.saturating_sub(self.at_unix).into();
        j["attempts_since"] = attempts.saturating_sub(self.attempts_at).into();
        j
    }
}

/// Whether two triggers read the same source of tables.
fn same_source(a: &Trigger, b: &Trigger) -> bool {
    use Trigger::*;
    let file = |t: &Trigger| matches!(t, Startup | File | Sighup | Api);
    match (a, b) {
        (Etcd { .. }, Etcd { .. }) | (Rollback { .. }, Rollback { .. }) => true,
        (Rollout { route: x, .. }, Rollout { route: y, .. }) => x == y,
        _ => file(a) && file(b),
    }
}

/// A trigger as its kind alone (`/status` shows `"trigger": "file"`).
pub fn kind<S: serde::Serializer>(t: &Trigger, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.kind())
}

/// The last write of state that failed, for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StateError {
    pub time: String,
    /// `history`, `version` or `audit`.
    pub what: StateWrite,
    pub error: String,
}

/// Attempts by result.
#[derive(Debug, Default)]
pub struct Counters {
    pub applied: AtomicU64,
    pub noop: AtomicU64,
    pub failed: AtomicU64,
    pub rollback: AtomicU64,
}

impl Counters {
    /// Every attempt counted so far.
    pub fn total(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        [&self.applied, &self.noop, &self.failed, &self.rollback]
            .iter()
            .map(|c| c.load(Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(trigger: Trigger) -> LastError {
        LastError {
            time: "t0".into(),
            trigger,
            errors: vec!["routes.yaml:1:9: routes: found ...".into()],
            at_unix: 1_000,
            attempts_at: 4,
            fixed_by: None,
        }
    }

    fn success(trigger: Trigger, result: Outcome, version: u64) -> ReloadReport {
        let mut r = ReloadReport::new(trigger, (version - 1).into(), Caller::default());
        r.result = result;
        r.version_after = version.into();
        r
    }

    #[test]
    fn a_later_success_of_the_same_source_fixes_the_last_error_once() {
        let mut e = failed(Trigger::File);
        // A rollback or a rollout step does not read the file: not fixed.
        e.fixed(&success(
            Trigger::Rollback { to: 1.into() },
            Outcome::Rollback,
            3,
        ));
        e.fixed(&success(
            Trigger::Rollout {
                route: "shop".into(),
                step: 1,
            },
            Outcome::Applied,
            4,
        ));
        assert!(e.fixed_by.is_none());
        // SIGHUP reads the file: fixed by version 5; a later one does not move it.
        e.fixed(&success(Trigger::Sighup, Outcome::Applied, 5));
        e.fixed(&success(Trigger::Api, Outcome::Applied, 6));
        let j = e.to_json(1_720, 9);
        assert_eq!(j["fixed_by"]["version"], 5);
        assert_eq!(j["fixed_by"]["trigger"], "sighup");
        assert_eq!(j["fixed_by"]["result"], "applied");
        assert_eq!(j["age_s"], 720);
        assert_eq!(j["attempts_since"], 5);
        assert_eq!(j["trigger"], "file");
        assert!(j.get("at_unix").is_none());

        let mut e = failed(Trigger::Etcd { revision: 7 });
        e.fixed(&success(Trigger::File, Outcome::NoOp, 5));
        assert!(e.fixed_by.is_none());
        e.fixed(&success(Trigger::Etcd { revision: 9 }, Outcome::Applied, 9));
        assert_eq!(e.fixed_by.map(|f| f.version), Some(9.into()));
    }
}
