//! What one attempt to change the routing table did: the answer to the trigger, the audit
//! record, and the counters by result.

use super::trigger::Trigger;
use super::version_id::VersionId;
use crate::config::Timings;
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
    /// As in the `result` label of `dyegate_reloads_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::NoOp => "no_op",
            Outcome::Failed => "failed",
            Outcome::Rollback => "rollback",
        }
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
            client: caller.client,
            identity: caller.identity,
            swap_micros: None,
            timings: None,
            state_errors: Vec::new(),
            rollout: None,
        }
    }
}

/// The last failed attempt, for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub time: String,
    #[serde(serialize_with = "kind")]
    pub trigger: Trigger,
    pub errors: Vec<String>,
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
    pub what: &'static str,
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
