//! The state of one route's rollout, as `/rollouts` shows it and as `state_dir/rollouts.json`
//! keeps it across restarts and upgrades.

use super::hooks::confirm::Confirmation;
use super::judge::Evaluation;
use crate::telemetry::labels::TriggerLabel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Known, no step applied yet.
    Pending,
    /// The shadow stage before step 1: the canary gets copies of the route's requests only
    /// (share 0 of untagged traffic), judged on its answers to them.
    Shadowing,
    /// On a step, the gates holding.
    Progressing,
    /// On a step, fewer than `min_requests` canary requests in the window: not judged, not
    /// promoted.
    WaitingForTraffic,
    /// Held on its step (a control, or `on_failure: pause`).
    Paused,
    /// The next step is in `pause_before`: waits for a promote.
    AwaitingApproval,
    /// The next step waits for `hooks.confirm_step` to answer 2xx (or a promote).
    AwaitingConfirmation,
    /// The last step held for `step_ms`; the table keeps its weights.
    Succeeded,
    /// A gate failed: canary share 0.
    Failed,
    /// Aborted by a control: canary share 0.
    Aborted,
}

pub const PHASES: [Phase; 10] = [
    Phase::Pending,
    Phase::Shadowing,
    Phase::Progressing,
    Phase::WaitingForTraffic,
    Phase::Paused,
    Phase::AwaitingApproval,
    Phase::AwaitingConfirmation,
    Phase::Succeeded,
    Phase::Failed,
    Phase::Aborted,
];

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Shadowing => "shadowing",
            Phase::Progressing => "progressing",
            Phase::WaitingForTraffic => "waiting_for_traffic",
            Phase::Paused => "paused",
            Phase::AwaitingApproval => "awaiting_approval",
            Phase::AwaitingConfirmation => "awaiting_confirmation",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Aborted => "aborted",
        }
    }

    /// Whether the gates judge the rollout in this state (a breach fails or pauses it).
    pub fn is_judged(self) -> bool {
        matches!(
            self,
            Phase::Shadowing
                | Phase::Progressing
                | Phase::WaitingForTraffic
                | Phase::AwaitingApproval
                | Phase::AwaitingConfirmation
        )
    }

    /// Whether the rollout is over (nothing moves it but a control or a file edit).
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Aborted)
    }
}

/// One move of a rollout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Move {
    pub at: String,
    pub state: Phase,
    pub step: usize,
    pub share: u8,
    /// What moved it: `rollout` (the gates), `control` (with the client), `file`, `startup`.
    pub by: MovedBy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutState {
    pub route: String,
    pub canary: String,
    /// Of the file's `split` and `rollout` this rollout runs.
    pub fingerprint: String,
    pub state: Phase,
    /// 1-based index in `steps`; 0 = none applied (the file's weights, or share 0 after a
    /// failure or an abort).
    pub step: usize,
    /// The canary's share the table has from this rollout; `None` = the file's weights.
    pub share: Option<u8>,
    pub since: String,
    /// When the current step was applied (Unix milliseconds).
    pub step_started_ms: u64,
    pub moved_by: MovedBy,
    #[serde(default)]
    pub last_evaluation: Option<Evaluation>,
    #[serde(default)]
    pub history: Vec<Move>,
    /// The route's weights an operator's rollback (or a change made around the rollout) put in
    /// the table: a paused rollout keeps them across reloads, restarts and upgrades, until a
    /// control moves it or an edit of the route's `split` or `rollout` starts it again. Only
    /// ever set while paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Vec<u32>>,
    /// The confirmation `awaiting_confirmation` waits for (only ever set in that state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
    /// Moves not yet handed to the events hook: (the move before, the move).
    #[serde(skip)]
    pub unannounced: Vec<(Option<Move>, Move)>,
    /// The shadow stage's mirror is set over the table: in `shadowing`, and paused there (a
    /// resume starts the stage again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// Changes with every move (a move decided before another one is dropped).
    #[serde(skip)]
    pub generation: u64,
}

/// Who moved a rollout: its gates, a control, a rollback, or the table of a trigger that
/// started it (serialised as in `rollouts.json` and the status: `rollout`, `control`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MovedBy {
    /// The gates' judgement.
    Rollout,
    /// `dyegate rollout pause|resume|promote|abort`.
    Control,
    /// A rollback that gave the route other weights.
    Rollback,
    Startup,
    File,
    Sighup,
    Api,
    Etcd,
    /// One gateway of a fleet alone, on its own window, while etcd was away.
    Local,
}

impl MovedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MovedBy::Rollout => "rollout",
            MovedBy::Control => "control",
            MovedBy::Rollback => "rollback",
            MovedBy::Startup => "startup",
            MovedBy::File => "file",
            MovedBy::Sighup => "sighup",
            MovedBy::Api => "api",
            MovedBy::Etcd => "etcd",
            MovedBy::Local => "local",
        }
    }
}

impl From<TriggerLabel> for MovedBy {
    /// The trigger whose table started or restarted a rollout.
    fn from(t: TriggerLabel) -> Self {
        match t {
            TriggerLabel::Startup => MovedBy::Startup,
            TriggerLabel::File => MovedBy::File,
            TriggerLabel::Sighup => MovedBy::Sighup,
            TriggerLabel::Api => MovedBy::Api,
            TriggerLabel::Rollback => MovedBy::Rollback,
            TriggerLabel::Rollout => MovedBy::Rollout,
            TriggerLabel::Etcd => MovedBy::Etcd,
        }
    }
}

impl std::fmt::Display for MovedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Moves kept per rollout.
const MAX_MOVES: usize = 200;

impl RolloutState {
    /// Why the last move was made, when it says.
    pub fn last_reason(&self) -> Option<&str> {
        self.history.last().and_then(|m| m.reason.as_deref())
    }

    /// A pending rollout; `started_ms` is the controller's clock now.
    pub fn new(
        route: &str,
        canary: &str,
        fingerprint: &str,
        by: MovedBy,
        started_ms: u64,
    ) -> RolloutState {
        let mut s = RolloutState {
            route: route.into(),
            canary: canary.into(),
            fingerprint: fingerprint.into(),
            state: Phase::Pending,
            step: 0,
            share: None,
            since: crate::stamp::now_rfc3339(),
            step_started_ms: started_ms,
            moved_by: by,
            last_evaluation: None,
            history: Vec::new(),
            held: None,
            confirmation: None,
            shadow: false,
            unannounced: Vec::new(),
            generation: 0,
        };
        s.moved(Phase::Pending, by, None);
        s
    }

    /// Records a move to `state` (the step and share as they are now). A move out of `paused`
    /// lets go of the weights it held.
    pub fn moved(&mut self, state: Phase, by: MovedBy, reason: Option<String>) {
        if state != Phase::Paused {
            self.held = None;
        }
        match state {
            Phase::AwaitingConfirmation => {
                let step = self.step + 1;
                if self.confirmation.as_ref().is_none_or(|c| c.step != step) {
                    self.confirmation = Some(Confirmation::new(step));
                }
            }
            _ => self.confirmation = None,
        }
        let before = self.history.last().cloned();
        if state != self.state || self.history.is_empty() {
            self.since = crate::stamp::now_rfc3339();
        }
        self.state = state;
        self.moved_by = by;
        let now = Move {
            at: crate::stamp::now_rfc3339(),
            state,
            step: self.step,
            share: self.share.unwrap_or(0),
            by,
            reason,
        };
        self.unannounced.push((before, now.clone()));
        if self.unannounced.len() > MAX_MOVES {
            self.unannounced.remove(0);
        }
        self.history.push(now);
        if self.history.len() > MAX_MOVES {
            self.history.remove(0);
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `state_dir/rollouts.json`.
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store {
            path: state_dir.join("rollouts.json"),
        }
    }

    /// The kept states; an unreadable file is logged and starts empty.
    pub fn load(&self) -> BTreeMap<String, RolloutState> {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return BTreeMap::new();
        };
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            log::error!(
                "rollout: {} unreadable ({e}); rollouts start again",
                self.path.display()
            );
            BTreeMap::new()
        })
    }

    /// Writes the states (temp file, then rename).
    pub fn save(&self, states: &BTreeMap<String, RolloutState>) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(states).map_err(|e| e.to_string())?;
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!("{}: {e}", self.path.display())
            })
    }
}
