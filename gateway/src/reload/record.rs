//! What an attempt records and what readers see: the history push, the audit line, the
//! publication of a committed version, failed writes of state, and `/status` and `/versions`.

use super::audit::AuditLog;
use super::history::VersionInfo;
use super::reloader::Reloader;
use super::reloader::{name_version, Naming};
use super::report::{ReloadReport, StateError};
use super::version_id::VersionId;
use crate::routing::RouteTable;
use crate::stamp::{now_rfc3339, sha256_hex, unix_now};
use crate::telemetry::labels::StateWrite;
use log::error;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Reloader {
    /// The name the next version gets (see [`name_version`]).
    pub(super) fn name_version(&self, naming: Naming, sha256: &str) -> VersionId {
        name_version(&self.lock_record().history, naming, sha256)
    }

    /// Records an applied version in the history: in memory under the record lock, then in
    /// `state_dir` outside it (the caller holds the commit lock). A failed write is reported.
    pub(super) fn record(
        &self,
        info: VersionInfo,
        text: Arc<str>,
        table: super::history::Compiled,
        report: &mut ReloadReport,
    ) {
        let persist = self.lock_record().history.push(info, text, table);
        if let Err(e) = persist.write() {
            report.state_errors.push(self.state_error(e.what, e.error));
        }
    }

    /// Makes a committed version what `/status` and `/versions` report: the last step of a
    /// commit, after its history and audit records.
    pub(super) fn publish(&self, info: &VersionInfo) {
        let mut record = self.lock_record();
        record.version = info.id();
        record.sha256 = info.sha256.clone();
        record.loaded_at = info.loaded_at.clone();
        record.trigger = info.trigger.clone();
    }

    /// The version committed last (see [`Record::version`]).
    pub fn version(&self) -> VersionId {
        self.published().version
    }

    /// Appends the attempt to the audit log; a failed write is reported in the answer.
    pub(super) fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    pub(super) fn audit(&self, report: &mut ReloadReport) {
        if let Err(e) = self.audit.append(&*report) {
            report
                .state_errors
                .push(self.state_error(StateWrite::Audit, e));
        }
    }

    /// A write of state failed: logged, counted and shown in `/status`; returns the message.
    fn state_error(&self, what: StateWrite, error: String) -> String {
        let message = match what {
            StateWrite::Audit => format!("audit log {}: {error}", self.audit.path().display()),
            _ => format!("state_dir ({}): {error}", what.as_str()),
        };
        error!("state: {message}; the change is in effect but not fully recorded");
        self.metrics.state_write_error(what);
        let mut record = self.lock_record();
        record.state_errors += 1;
        record.last_state_error = Some(StateError {
            time: now_rfc3339(),
            what,
            error: message.clone(),
        });
        message
    }

    /// Status for the admin API. Never waits for an attempt under way.
    pub fn status(&self) -> serde_json::Value {
        let on_disk = std::fs::read(&self.routes_path)
            .ok()
            .map(|b| sha256_hex(&b));
        let record = self.published();
        let active = self.active.load_full();
        let mut status = serde_json::json!({
            "version": active.version,
            "sha256": active.sha256,
            "loaded_at": record.loaded_at,
            "trigger": record.trigger.kind(),
            "routes_file": self.routes_path.display().to_string(),
            "file_sha256": on_disk,
            "matches_file": on_disk.as_deref() == Some(record.sha256.as_str()),
            "routes": active.table.routes().len(),
            "upstreams": active.table.groups().len(),
            "last_error": record.last_error.as_ref()
                .map(|e| e.to_json(unix_now(), self.counters.total())),
            "reload_in_progress": record.in_progress,
            "state_errors": {
                "count": record.state_errors,
                "last": record.last_state_error,
            },
            "reloads": {
                "applied": self.counters.applied.load(Ordering::Relaxed),
                "noop": self.counters.noop.load(Ordering::Relaxed),
                "failed": self.counters.failed.load(Ordering::Relaxed),
                "rollback": self.counters.rollback.load(Ordering::Relaxed),
            },
            "audit_log": self.audit.path().display().to_string(),
        });
        drop(record);
        if let (true, Some(map)) = (active.local > 0, status.as_object_mut()) {
            // Serving a change made on this gateway alone, on fleet version `version`.
            map.insert("local".into(), active.local.into());
        }
        if let (Some(source), Some(map)) = (&self.source, status.as_object_mut()) {
            for k in ["routes_file", "file_sha256", "matches_file"] {
                map.remove(k);
            }
            if let Some(extra) = source.to_json().as_object() {
                map.extend(extra.clone());
            }
        } else if let Some(map) = status.as_object_mut() {
            map.insert("source".into(), "file".into());
        }
        status
    }

    pub fn versions(&self) -> Vec<VersionInfo> {
        self.published().history.list()
    }

    /// A kept version's record (with the weights set over it) and its text as written.
    pub fn version_text(&self, id: VersionId) -> Option<(VersionInfo, Arc<str>)> {
        let record = self.lock_record();
        record
            .history
            .get(id)
            .map(|k| (k.info.clone(), k.text.clone()))
    }

    /// The running table (for `/routes`).
    pub fn table(&self) -> Arc<RouteTable> {
        self.active.load().table.clone()
    }
}
