//! The reloader: owns the active table handle and everything a change records, and turns each
//! trigger into a [`Candidate`] for the one [`commit`](Reloader::commit) path.
//!
//! Two locks, never held together by a reader: the commit lock ([`Running`]) serialises the
//! attempts (a trigger builds its candidate and commits under it, however long the parse takes);
//! the record lock ([`Record`]) guards what `/status` and `/versions` read and is only ever held
//! for a few field updates, so the admin API answers while a slow reload parses.

use super::audit::AuditLog;
use super::history::{check_writable, Compiled, History, Limits, VersionInfo};
use super::overlay::Overlay;
use super::report::{kind, Caller, Counters, LastError, Outcome, ReloadReport, StateError};
use super::trigger::Trigger;
use super::version_id::VersionId;
use super::watcher::Fingerprint;
use crate::config::incremental::Reuse;
use crate::config::model::RoutesConfig;
use crate::config::{ConfigErrors, LoadedRoutes, Overrides};
use crate::routing::{ActiveTable, RouteTable, SharedTable};
use crate::source::status::SourceStatus;
use crate::stamp::{now_rfc3339, sha256_hex, unix_now};
use crate::telemetry::{Metrics, TableMetrics};
use arc_swap::ArcSwap;
use log::info;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The running version as the next attempt builds on it; held as the commit lock.
pub(super) struct Running {
    /// Its source text as written, and the sha256 of that text alone.
    pub text: Arc<str>,
    pub text_sha256: String,
    /// The text decoded, as written.
    pub model: Arc<RoutesConfig>,
    /// The weights set over it (rollout steps).
    pub overrides: Overrides,
    /// Its entries, for the next reload to reuse the unchanged ones.
    pub reuse: Option<Reuse>,
}

/// What readers see of the versions; held briefly.
pub(super) struct Record {
    pub history: History,
    /// The version committed last, once recorded and audited (requests may see a table a few
    /// milliseconds before: the swap comes first).
    pub version: VersionId,
    pub sha256: String,
    pub loaded_at: String,
    pub trigger: Trigger,
    pub last_error: Option<LastError>,
    /// The attempt under way, if any.
    pub in_progress: Option<InProgress>,
    /// Failed writes of state: how many, and the last one.
    pub state_errors: u64,
    pub last_state_error: Option<StateError>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct InProgress {
    #[serde(serialize_with = "kind")]
    pub trigger: Trigger,
    pub since: String,
}

/// How a reloader starts: the version and trigger of its first table, and the source it follows
/// when that is not the routes file.
pub struct StartAt {
    /// The version the first table must have (an etcd revision); `None`: the next number.
    pub version: Option<u64>,
    pub trigger: Trigger,
    /// `Some`: the table comes from etcd; `routes_path` is not read.
    pub source: Option<Arc<SourceStatus>>,
}

impl Default for StartAt {
    fn default() -> Self {
        StartAt {
            version: None,
            trigger: Trigger::Startup,
            source: None,
        }
    }
}

/// A table from a source other than the routes file (an etcd revision), for
/// [`Reloader::apply_source`].
pub struct SourceText<'a> {
    /// The table as routes.yaml text.
    pub text: String,
    /// The number it must get (the revision of the table's keys); a fleet rollout's step read
    /// with it may give it a higher one (see `rollout::fleet::weights`).
    pub version: u64,
    /// The steps of the fleet's rollouts read with it, set over it.
    pub steps: &'a crate::rollout::FleetSteps,
    /// Names the text in messages.
    pub name: &'a str,
    /// Moves each error to where its line came from (the key).
    pub locate: &'a dyn Fn(ConfigErrors) -> ConfigErrors,
    /// The source's own check against the running table (an etcd table that would empty a
    /// gateway by accident); its errors are already located.
    pub admit: &'a dyn Fn(&RouteTable) -> Result<(), ConfigErrors>,
}

pub struct Reloader {
    pub(super) routes_path: PathBuf,
    /// `reload.max_file_bytes`: a bigger routes file is not read, let alone parsed.
    pub(super) max_file_bytes: usize,
    /// The etcd source's state, when the table comes from etcd.
    pub(super) source: Option<Arc<SourceStatus>>,
    /// The routes file as it was just after the startup load: the file watch starts later, and
    /// compares with this to catch a save made in between.
    pub(super) loaded_fingerprint: Option<Fingerprint>,
    pub(super) active: SharedTable<TableMetrics>,
    running: Mutex<Running>,
    /// Held by a commit from its swap to its publication (milliseconds: diff, history, audit),
    /// so that a reader that sees the new table in traffic also sees it recorded.
    pub(super) gate: Mutex<()>,
    pub(super) record: Mutex<Record>,
    pub(super) audit: AuditLog,
    pub(super) metrics: Arc<Metrics>,
    pub counters: Counters,
    pub(super) last_success_unix: AtomicU64,
    /// What the running rollouts set over every table (see [`Overlay`]).
    pub(super) overlay: Option<Arc<dyn Overlay>>,
    /// Asks the DNS names new to a candidate before it is committed (`dns/prefetch.rs`).
    pub(super) prefetch: Option<crate::dns::Prefetch>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Reloader {
    /// Starts from the routes file as loaded at startup. When its content is the latest kept
    /// version, that version goes on; otherwise it becomes a new version (trigger `startup`).
    /// Fails when `state_dir` or the audit log cannot be written: a gateway that cannot keep
    /// its history would reuse version numbers after a restart.
    pub fn new(
        routes_path: &Path,
        loaded: LoadedRoutes,
        state_dir: &Path,
        history: Limits,
        audit_log: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<Reloader, String> {
        Self::start(
            routes_path,
            loaded,
            StartAt::default(),
            state_dir,
            history,
            audit_log,
            metrics,
        )
    }

    /// [`Reloader::new`] with the first version given by its source (see [`StartAt`]).
    pub fn start(
        routes_path: &Path,
        loaded: LoadedRoutes,
        start: StartAt,
        state_dir: &Path,
        history: Limits,
        audit_log: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<Reloader, String> {
        check_writable(state_dir)?;
        let audit = AuditLog::new(audit_log);
        audit.check_writable()?;
        let mut history = History::load(state_dir, history);
        history.seen(audit.last_version());
        let sha = loaded.overrides.sha256_with(loaded.text.as_bytes());
        let table = loaded.table.clone();
        let before = history
            .latest()
            .map_or(VersionId::default(), |k| k.info.id());
        let (info, result) = first_version(&mut history, &loaded, &sha, &start, state_dir)?;
        let version = info.id();
        let mut report = ReloadReport::new(start.trigger, before, Caller::default());
        report.result = result;
        report.version_after = version;
        report.sha256 = Some(sha.clone());
        audit
            .append(&report)
            .map_err(|e| format!("audit log {}: {e}", audit.path().display()))?;
        info!(
            "routing table version {version} ({}), sha256 {sha}",
            info.trigger.kind()
        );
        metrics.set_routing_version(version.version);
        metrics.reload(Trigger::Startup.label(), result.label(), Some(unix_now()));
        let reloader = Reloader {
            routes_path: routes_path.to_path_buf(),
            max_file_bytes: crate::config::bounds::DEFAULT_MAX_FILE_BYTES,
            source: start.source,
            loaded_fingerprint: Fingerprint::of(routes_path),
            active: Arc::new(ArcSwap::from_pointee(ActiveTable {
                metrics: Arc::new(metrics.for_table(&table, None)),
                table,
                version: version.version,
                local: version.local,
                sha256: sha.clone(),
            })),
            gate: Mutex::new(()),
            running: Mutex::new(Running {
                text_sha256: sha256_hex(loaded.text.as_bytes()),
                text: loaded.text,
                model: loaded.model,
                overrides: loaded.overrides,
                reuse: loaded.reuse.inspect(|r| r.prepare()),
            }),
            record: Mutex::new(Record {
                history,
                version,
                sha256: sha.clone(),
                loaded_at: info.loaded_at,
                trigger: info.trigger,
                last_error: None,
                in_progress: None,
                state_errors: 0,
                last_state_error: None,
            }),
            audit,
            metrics,
            counters: Counters::default(),
            last_success_unix: AtomicU64::new(unix_now()),
            overlay: None,
            prefetch: None,
        };
        Ok(reloader)
    }

    /// The handle requests load the table from.
    pub fn active(&self) -> SharedTable<TableMetrics> {
        self.active.clone()
    }

    /// The etcd source's state, when the table comes from etcd.
    pub fn source(&self) -> Option<&Arc<SourceStatus>> {
        self.source.as_ref()
    }

    pub fn routes_path(&self) -> &Path {
        &self.routes_path
    }

    pub fn loaded_fingerprint(&self) -> Option<Fingerprint> {
        self.loaded_fingerprint.clone()
    }

    pub fn last_success_unix(&self) -> u64 {
        self.last_success_unix.load(Ordering::Relaxed)
    }

    pub(super) fn lock_record(&self) -> MutexGuard<'_, Record> {
        lock(&self.record)
    }

    /// Taken by a commit from its swap to its publication.
    pub(super) fn lock_gate(&self) -> MutexGuard<'_, ()> {
        lock(&self.gate)
    }

    /// The record as published, after any commit between its swap and its publication (never
    /// after a parse: attempts parse before they take the gate).
    pub(super) fn published(&self) -> MutexGuard<'_, Record> {
        drop(self.lock_gate());
        self.lock_record()
    }

    /// Waits (at most `timeout`) for an attempt under way to finish, so that a version requests
    /// already see is also recorded before the process exits. Called on the way out, when no new
    /// attempt starts.
    pub fn settle(&self, timeout: std::time::Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.running.try_lock() {
                Ok(_) | Err(std::sync::TryLockError::Poisoned(_)) => return,
                Err(std::sync::TryLockError::WouldBlock) => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
            }
        }
        log::warn!("exiting with a reload still under way after {timeout:?}");
    }

    pub(super) fn lock_running(&self) -> MutexGuard<'_, Running> {
        lock(&self.running)
    }

    /// Every commit first asks the DNS names its table brings that are not known yet.
    pub fn with_prefetch(mut self, prefetch: crate::dns::Prefetch) -> Self {
        self.prefetch = Some(prefetch);
        self
    }

    /// Sets `reload.max_file_bytes` (default [`crate::config::bounds::DEFAULT_MAX_FILE_BYTES`]).
    pub fn with_max_file_bytes(mut self, max_file_bytes: usize) -> Self {
        self.max_file_bytes = max_file_bytes;
        self
    }

    /// Sets what the running rollouts set over every table, whatever its source (see
    /// [`Overlay`]); given before the reloader is shared.
    pub fn with_overlay(mut self, overlay: Arc<dyn Overlay>) -> Self {
        self.overlay = Some(overlay);
        self
    }
}

/// The version the startup table runs as: the latest kept one when it has the same content
/// (and the source asks for no other number), else a new version, recorded before serving.
fn first_version(
    history: &mut History,
    loaded: &LoadedRoutes,
    sha: &str,
    start: &StartAt,
    state_dir: &Path,
) -> Result<(VersionInfo, Outcome), String> {
    let compiled = Compiled {
        table: loaded.table.clone(),
        model: loaded.model.clone(),
    };
    let latest = history.latest().map(|k| k.info.clone());
    match latest {
        Some(info)
            if info.sha256 == sha
                && info.version == history.next_version() - 1
                && start.version.is_none_or(|v| v == info.version) =>
        {
            history.attach_table(info.id(), compiled);
            Ok((info, Outcome::NoOp))
        }
        _ => {
            let naming = start.version.map_or(Naming::Next, Naming::Revision);
            let id = name_version(history, naming, sha);
            let info = VersionInfo {
                version: id.version,
                local: id.local,
                sha256: sha.to_string(),
                loaded_at: now_rfc3339(),
                trigger: start.trigger.clone(),
                rollback_from: None,
                overrides: loaded.overrides.clone(),
                identity: None,
                client: None,
            };
            (history
                .push(info.clone(), loaded.text.clone(), compiled)
                .write())
            .map_err(|e| {
                format!(
                    "state_dir {}: cannot write {}: {}",
                    state_dir.display(),
                    e.what.as_str(),
                    e.error
                )
            })?;
            Ok((info, Outcome::Applied))
        }
    }
}

/// How a committed version is named.
#[derive(Debug, Clone, Copy)]
pub(super) enum Naming {
    /// The next number (a gateway that follows its routes file).
    Next,
    /// The fleet's version: an etcd revision.
    Revision(u64),
    /// A change made on this gateway alone while it follows etcd, on this fleet version.
    LocalOn(u64),
}

/// The name of the next version. Numbers are never given twice, so an etcd revision is used as
/// is when it is above every number used, or when it is a kept fleet version with the same
/// content (the fleet's table applied again after a local change); a revision below those
/// (etcd replaced by a new cluster) gets the next number. A local change takes the next local
/// sequence under the fleet version it was made on: it never moves the fleet's numbers.
pub(super) fn name_version(history: &History, naming: Naming, sha: &str) -> VersionId {
    let next = history.next_version();
    match naming {
        Naming::Next => VersionId::new(next),
        Naming::LocalOn(v) => history.next_local(v),
        Naming::Revision(v) if v >= next => VersionId::new(v),
        Naming::Revision(v)
            if (history.get(VersionId::new(v))).is_some_and(|k| k.info.sha256 == sha) =>
        {
            VersionId::new(v)
        }
        Naming::Revision(v) => {
            log::warn!("etcd revision {v} is not above the versions this gateway already used and is not a kept version with this content (was etcd replaced?): applied as version {next}");
            VersionId::new(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_is_used_as_is_unless_a_number_would_be_given_twice() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let limits = Limits {
            count: 10,
            bytes: 1 << 20,
        };
        let mut h = History::load(dir.path(), limits);
        let name = |h: &History, n: Naming, sha: &str| name_version(h, n, sha).to_string();
        assert_eq!(name(&h, Naming::Next, "a"), "1");
        assert_eq!(name(&h, Naming::Revision(41), "a"), "41");
        let info = |id: VersionId, sha: &str| VersionInfo {
            version: id.version,
            local: id.local,
            sha256: sha.into(),
            loaded_at: String::new(),
            trigger: Trigger::Startup,
            rollback_from: None,
            overrides: Overrides::default(),
            identity: None,
            client: None,
        };
        let table = Arc::new(RouteTable::default());
        let push = |h: &mut History, id: VersionId, sha: &str| {
            assert_eq!(
                h.push(info(id, sha), "x".into(), table.clone().into())
                    .write(),
                Ok(())
            );
        };
        push(&mut h, VersionId::new(41), "fleet");
        // A local rollback on 41 takes 41.1, not 42; the next fleet revision keeps its number.
        assert_eq!(name(&h, Naming::LocalOn(41), "old"), "41.1");
        push(&mut h, VersionId::local(41, 1), "old");
        assert_eq!(name(&h, Naming::LocalOn(41), "older"), "41.2");
        assert_eq!(name(&h, Naming::Revision(42), "new"), "42");
        // The fleet's 41 applied again after the local change (a re-list): still 41.
        assert_eq!(name(&h, Naming::Revision(41), "fleet"), "41");
        // A revision 41 with other content, or below every kept number: never given twice.
        assert_eq!(name(&h, Naming::Revision(41), "other"), "42");
        assert_eq!(name(&h, Naming::Revision(3), "fleet"), "42");
        assert_eq!(name(&h, Naming::Next, "a"), "42");
    }
}
