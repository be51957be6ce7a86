//! The one commit path. Every change of the routing table — a file change, SIGHUP, the admin
//! API, a rollback, a rollout step, an etcd revision — arrives here as a [`Candidate`] from
//! its attempt and goes through the same steps, once: carry-over of positions, metric handles,
//! swap, counters, diff, history, audit.

use super::candidate::Candidate;
use super::history::{Compiled, VersionInfo};
use super::reloader::{Naming, Reloader, Running};
use super::report::{LastError, Outcome, ReloadReport};
use super::trigger::Trigger;
use super::version_id;
use crate::config::diff::{diff, Diff};
use crate::config::table::overrides::over;
use crate::routing::ActiveTable;
use crate::stamp::{sha256_hex, unix_now};
use log::{error, info, warn};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The history's record of the version `report` applied over version `was`: what, when, by
/// which trigger, and who asked.
fn version_info(
    id: version_id::VersionId,
    sha256: String,
    overrides: crate::routing::Overrides,
    report: &ReloadReport,
    was: version_id::VersionId,
) -> VersionInfo {
    VersionInfo {
        version: id.version,
        local: id.local,
        sha256,
        loaded_at: report.time.clone(),
        rollback_from: matches!(report.trigger, Trigger::Rollback { .. }).then_some(was),
        trigger: report.trigger.clone(),
        overrides,
        identity: report.identity.clone(),
        client: report.client.clone(),
    }
}

/// Diff lines logged one by one; past this, the rest is summarised (a 10,000-route rewrite
/// would otherwise log every route).
const MAX_DIFF_LOG_LINES: usize = 100;

impl Reloader {
    /// Applies `candidate` as the next version (numbered by its source when it gives a number,
    /// an etcd revision; on a gateway that follows etcd, any other change is local: the running
    /// fleet version plus the next local sequence): the attempt holds the commit lock
    /// (`running`, the running version) and built the candidate under it.
    pub(super) fn commit(
        &self,
        running: &mut Running,
        candidate: Candidate,
        mut report: ReloadReport,
    ) -> ReloadReport {
        // Before the swap, outside the compile step: the names the table brings are asked
        // (a bounded wait), so that its first requests find their addresses.
        let warnings = (self.prefetch.as_ref())
            .map(|p| p.resolve_new(&candidate.table))
            .unwrap_or_default();
        let gate = self.lock_gate();
        let current = self.active.load_full();
        report.warnings = warnings;
        report.result = match report.trigger {
            Trigger::Rollback { .. } => Outcome::Rollback,
            _ => Outcome::Applied,
        };
        report.sha256 = Some(candidate.sha256.clone());
        report.timings = candidate.timings;
        report.rollout = candidate.note.clone().or(report.rollout.take());
        if let Some(trigger) = &candidate.trigger {
            report.trigger = trigger.clone();
        }
        let naming = match (candidate.revision, &self.source) {
            (Some(v), _) => Naming::Revision(v),
            (None, Some(_)) => Naming::LocalOn(current.version),
            (None, None) => Naming::Next,
        };
        let id = self.name_version(naming, &candidate.sha256);
        let table = candidate.table.clone();
        if candidate.continue_positions {
            table.inherit_positions(&current.table, &candidate.carried);
        }
        let metrics = Arc::new(self.metrics.for_table(
            &table,
            Some((&current.table, &current.metrics, &candidate.carried)),
        ));
        self.active.store(Arc::new(ActiveTable {
            table: table.clone(),
            version: id.version,
            local: id.local,
            sha256: candidate.sha256.clone(),
            metrics,
        }));
        self.metrics.set_routing_version(id.version);
        report.swap_micros = Some(candidate.started.elapsed().as_micros() as u64);
        report.version_after = id;
        // Counted at the swap, with the routing version: a scrape never sees one without the other.
        let counter = match report.result {
            Outcome::Rollback => &self.counters.rollback,
            _ => &self.counters.applied,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.last_success_unix.store(unix_now(), Ordering::Relaxed);
        self.metrics.reload(
            report.trigger.label(),
            report.result.label(),
            Some(unix_now()),
        );
        self.log_swap(&report);
        // After the swap: the diff (of the tables as compiled, weights set over them included),
        // and the lookup of this version's entries for the next reload. Nothing is parsed here.
        if let Some(reuse) = &candidate.reuse {
            reuse.prepare();
        }
        let before = over(&running.overrides, &running.model);
        let after = over(&candidate.overrides, &candidate.model);
        record_diff(&mut report, &diff(&before, &after));
        *running = Running {
            text_sha256: sha256_hex(candidate.text.as_bytes()),
            text: candidate.text.clone(),
            model: candidate.model.clone(),
            overrides: candidate.overrides.clone(),
            reuse: candidate.reuse,
        };
        for w in &report.warnings {
            warn!("reload ({}): applied, but {w}", report.trigger.kind());
        }
        let was = version_id::of(&current);
        let info = version_info(id, candidate.sha256, candidate.overrides, &report, was);
        let compiled = Compiled {
            table,
            model: candidate.model,
        };
        self.record(info.clone(), candidate.text, compiled, &mut report);
        self.audit(&mut report);
        self.publish(&info);
        self.succeeded(&report);
        drop(gate);
        report
    }

    /// Records a failed attempt: the running version keeps serving.
    pub(super) fn fail(&self, mut report: ReloadReport) -> ReloadReport {
        error!(
            "reload ({}): rejected, version {} keeps serving; {} error(s):",
            report.trigger.kind(),
            report.version_before,
            report.errors.len()
        );
        for e in &report.errors {
            error!("  {e}");
        }
        // Counted and recorded under the record lock `/status` reads both under: a reader that
        // sees the failure counted sees its error.
        let mut record = self.lock_record();
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        record.last_error = Some(LastError {
            time: report.time.clone(),
            trigger: report.trigger.clone(),
            errors: report.errors.clone(),
            at_unix: unix_now(),
            attempts_at: self.counters.total(),
            fixed_by: None,
        });
        drop(record);
        self.metrics
            .reload(report.trigger.label(), Outcome::Failed.label(), None);
        self.audit(&mut report);
        report
    }

    /// Records an attempt that found nothing to change.
    pub(super) fn no_op(&self, mut report: ReloadReport, sha256: String) -> ReloadReport {
        info!(
            "reload ({}): no change (sha256 {sha256})",
            report.trigger.kind()
        );
        report.result = Outcome::NoOp;
        report.sha256 = Some(sha256);
        // As in `fail`: counted and marking the last error fixed together.
        let mut record = self.lock_record();
        self.counters.noop.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = record.last_error.as_mut() {
            e.fixed(&report);
        }
        drop(record);
        self.metrics
            .reload(report.trigger.label(), Outcome::NoOp.label(), None);
        self.audit(&mut report);
        report
    }

    /// A success: the last error of the same source, if any, is fixed by it.
    fn succeeded(&self, report: &ReloadReport) {
        if let Some(e) = self.lock_record().last_error.as_mut() {
            e.fixed(report);
        }
    }

    fn log_swap(&self, report: &ReloadReport) {
        let swap = report.swap_micros.unwrap_or(0);
        match (&report.trigger, &report.timings) {
            (Trigger::Rollback { to }, _) => info!(
                "rollback: version {} -> {} (restores version {to}) in {swap} µs",
                report.version_before, report.version_after
            ),
            (t, Some(timings)) => info!(
                "reload ({}): parse {} µs ({} entries parsed, {} unchanged), decode {} µs, validate {} µs, compile {} µs, parse-to-swap {swap} µs",
                t.kind(),
                timings.parse_us,
                timings.parsed,
                timings.reused,
                timings.decode_us,
                timings.validate_us,
                timings.compile_us
            ),
            _ => {}
        }
    }
}

/// Logs the diff of an applied version and puts it in the report.
fn record_diff(report: &mut ReloadReport, d: &Diff) {
    info!(
        "reload ({}): applied version {} (was {}), {}, parse-to-swap {} µs",
        report.trigger.kind(),
        report.version_after,
        report.version_before,
        d.summary(),
        report.swap_micros.unwrap_or(0)
    );
    for line in d.lines.iter().take(MAX_DIFF_LOG_LINES) {
        info!("  diff: {line}");
    }
    if d.lines.len() > MAX_DIFF_LOG_LINES {
        info!(
            "  diff: ... and {} more lines (the audit log has them all)",
            d.lines.len() - MAX_DIFF_LOG_LINES
        );
    }
    report.diff_summary = Some(d.summary());
    report.diff = d.lines.clone();
}
