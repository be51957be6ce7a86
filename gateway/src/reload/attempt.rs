//! One attempt, whatever its source: the routes file (a save, SIGHUP, `POST /reload`), an etcd
//! revision, a rollback, a rollout's step. [`Reloader::attempt`] owns the steps every source
//! shares — the commit lock and `reload_in_progress`, the report, the no-op, the failure, the
//! commit — and a source only builds: it says what its trigger makes of the running version
//! ([`Built`]), and what goes with the version once it is in effect ([`Then`]).

use super::candidate::Candidate;
use super::reloader::{InProgress, Reloader, Running};
use super::report::{Caller, ReloadReport};
use super::trigger::Trigger;
use super::version_id;
use crate::routing::ActiveTable;
use crate::stamp::now_rfc3339;
use std::sync::{Arc, MutexGuard};

/// What a source made of its trigger.
pub(super) enum Built {
    /// A new version to commit.
    Commit(Box<Candidate>),
    /// The content of the running version (text and overrides): nothing to change.
    Same {
        sha256: String,
        /// What a rollout says of the attempt (rollouts started by a file edit that leaves the
        /// table as it is, for example).
        note: Option<serde_json::Value>,
    },
    /// Refused, with the reasons: the running version keeps serving.
    Refused(Vec<String>),
    /// Content read (its sha256) but invalid: refused, the running version keeps serving.
    Invalid { sha256: String, errors: Vec<String> },
    /// Not an attempt after all (a rollout's move that another move came before): nothing is
    /// recorded, counted or audited; the source says why to its own caller.
    Withdrawn,
}

/// What an attempt that did not fail hands to its source, still under the commit lock: the
/// tables before and after (the same table after a no-op).
pub(super) struct Done<'r> {
    pub before: &'r Arc<ActiveTable<crate::telemetry::TableMetrics>>,
    pub after: &'r Arc<ActiveTable<crate::telemetry::TableMetrics>>,
}

/// Run when the attempt did not fail, under the commit lock, so that what the source records
/// (a rollout's state, the rollouts a rollback holds) changes together with the table for every
/// other trigger.
pub(super) type Then<'a> = Box<dyn FnOnce(&Done<'_>) + 'a>;

/// What a source's build step returns.
pub(super) struct Build<'a> {
    pub built: Built,
    pub then: Option<Then<'a>>,
}

impl From<Built> for Build<'_> {
    fn from(built: Built) -> Self {
        Build { built, then: None }
    }
}

/// The commit lock of one attempt; `reload_in_progress` is shown while it is held and cleared
/// when it is let go, whatever way the attempt ends.
pub(super) struct Held<'r> {
    reloader: &'r Reloader,
    pub running: MutexGuard<'r, Running>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.reloader.lock_record().in_progress = None;
    }
}

impl Reloader {
    /// Takes the commit lock for one attempt, and says so in `/status` while it lasts.
    pub(super) fn begin(&self, trigger: &Trigger) -> Held<'_> {
        let running = self.lock_running();
        self.lock_record().in_progress = Some(InProgress {
            trigger: trigger.clone(),
            since: now_rfc3339(),
        });
        Held {
            reloader: self,
            running,
        }
    }

    /// One attempt of `trigger`: `build` runs under the commit lock with the running version
    /// and the table requests see, and its result is refused, found to change nothing, or
    /// committed — recorded, counted and audited the same way for every source.
    pub(super) fn attempt<'a>(
        &self,
        trigger: Trigger,
        caller: Caller,
        build: impl FnOnce(&Running, &Arc<ActiveTable<crate::telemetry::TableMetrics>>) -> Build<'a>,
    ) -> ReloadReport {
        let mut held = self.begin(&trigger);
        let before = self.active.load_full();
        let Build { built, then } = build(&held.running, &before);
        let mut report = ReloadReport::new(trigger, version_id::of(&before), caller);
        let report = match built {
            Built::Refused(errors) => {
                report.errors = errors;
                return self.fail(report);
            }
            Built::Invalid { sha256, errors } => {
                report.sha256 = Some(sha256);
                report.errors = errors;
                return self.fail(report);
            }
            Built::Withdrawn => return report,
            Built::Same { sha256, note } => {
                report.rollout = note;
                self.no_op(report, sha256)
            }
            Built::Commit(candidate) => self.commit(&mut held.running, *candidate, report),
        };
        if let Some(then) = then {
            let after = self.active.load_full();
            then(&Done {
                before: &before,
                after: &after,
            });
        }
        report
    }
}
