//! The reload pipeline shared by every trigger, and rollback. Reloads are serialised; requests
//! never wait for them: they keep the table they loaded when they started.

use super::active::ActiveTable;
use super::audit::AuditLog;
use super::history::{History, VersionInfo};
use super::watcher::Fingerprint;
use super::{now_rfc3339, sha256_hex};
use crate::config::diff::{diff, Diff};
use crate::config::incremental::Reuse;
use crate::config::model::RoutesConfig;
use crate::config::{routes_from_text_after, LoadedRoutes};
use crate::routing::{Carried, RouteTable};
use crate::telemetry::Metrics;
use arc_swap::ArcSwap;
use log::{error, info, warn};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Startup,
    File,
    Sighup,
    Api,
    Rollback,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::File => "file",
            Trigger::Sighup => "sighup",
            Trigger::Api => "api",
            Trigger::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    NoOp,
    Failed,
    Rollback,
}

/// The result of one reload attempt; also the audit record.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub time: String,
    pub trigger: Trigger,
    pub result: Outcome,
    pub version_before: u64,
    pub version_after: u64,
    pub sha256: Option<String>,
    pub diff_summary: Option<String>,
    pub diff: Vec<String>,
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u64>,
    /// Parse to swap, microseconds (applied and rollback only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_micros: Option<u64>,
    /// Where the parse-to-swap time went (applied only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<crate::config::Timings>,
}

/// The last failed attempt, for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub time: String,
    pub trigger: Trigger,
    pub errors: Vec<String>,
}

/// Counters by result.
#[derive(Debug, Default)]
pub struct Counters {
    pub applied: AtomicU64,
    pub noop: AtomicU64,
    pub failed: AtomicU64,
    pub rollback: AtomicU64,
}

struct State {
    history: History,
    /// The decoded model of the running version (for diffs).
    model: Arc<RoutesConfig>,
    /// The running version's entries, for the next reload to reuse the unchanged ones.
    reuse: Option<Reuse>,
    loaded_at: String,
    trigger: Trigger,
    last_error: Option<LastError>,
}

/// Owns the active table handle and everything a reload records.
pub struct Reloader {
    routes_path: PathBuf,
    /// The routes file as it was just after the startup load: the file watch starts later, and
    /// compares with this to catch a save made in between.
    loaded_fingerprint: Option<Fingerprint>,
    active: Arc<ArcSwap<ActiveTable>>,
    state: Mutex<State>,
    audit: AuditLog,
    metrics: Arc<Metrics>,
    pub counters: Counters,
    last_success_unix: AtomicU64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Reloader {
    /// Starts from the routes file as loaded at startup. When its content is the latest kept
    /// version, that version goes on; otherwise it becomes a new version (trigger `startup`).
    pub fn new(
        routes_path: &Path,
        loaded: LoadedRoutes,
        state_dir: &Path,
        history_limit: usize,
        audit_log: &Path,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        let mut history = History::load(state_dir, history_limit);
        let sha = sha256_hex(loaded.text.as_bytes());
        let table = loaded.table.clone();
        let audit = AuditLog::new(audit_log);
        let before = history.latest().map_or(0, |k| k.info.version);
        let (version, trigger, loaded_at, result) = match history.latest() {
            Some(k) if k.info.sha256 == sha => {
                let v = k.info.version;
                let (at, trig) = (k.info.loaded_at.clone(), k.info.trigger.clone());
                history.attach_table(v, table.clone());
                let trig = match trig.as_str() {
                    "file" => Trigger::File,
                    "sighup" => Trigger::Sighup,
                    "api" => Trigger::Api,
                    "rollback" => Trigger::Rollback,
                    _ => Trigger::Startup,
                };
                (v, trig, at, Outcome::NoOp)
            }
            _ => {
                let v = history.next_version();
                let at = now_rfc3339();
                history.push(
                    VersionInfo {
                        version: v,
                        sha256: sha.clone(),
                        loaded_at: at.clone(),
                        trigger: "startup".into(),
                        rollback_to: None,
                        rollback_from: None,
                    },
                    loaded.text.clone(),
                    table.clone(),
                );
                (v, Trigger::Startup, at, Outcome::Applied)
            }
        };
        audit.append(&ReloadReport {
            time: now_rfc3339(),
            trigger: Trigger::Startup,
            result,
            version_before: before,
            version_after: version,
            sha256: Some(sha.clone()),
            diff_summary: None,
            diff: Vec::new(),
            errors: Vec::new(),
            client: None,
            rollback_to: None,
            swap_micros: None,
            timings: None,
        });
        info!("routing table version {version} ({trigger:?}), sha256 {sha}");
        metrics.set_routing_version(version);
        metrics.reload(
            "startup",
            if result == Outcome::Applied {
                "applied"
            } else {
                "no_op"
            },
            Some(unix_now()),
        );
        Reloader {
            routes_path: routes_path.to_path_buf(),
            loaded_fingerprint: Fingerprint::of(routes_path),
            active: Arc::new(ArcSwap::from_pointee(ActiveTable {
                metrics: Arc::new(metrics.for_table(&table)),
                table,
                version,
                sha256: sha,
            })),
            state: Mutex::new(State {
                history,
                model: loaded.model,
                reuse: loaded.reuse.inspect(|r| r.prepare()),
                loaded_at,
                trigger,
                last_error: None,
            }),
            audit,
            metrics,
            counters: Counters::default(),
            last_success_unix: AtomicU64::new(unix_now()),
        }
    }

    /// The handle requests load the table from.
    pub fn active(&self) -> Arc<ArcSwap<ActiveTable>> {
        self.active.clone()
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Reads the routes file and applies it if it changed and is valid.
    pub fn reload(&self, trigger: Trigger, client: Option<String>) -> ReloadReport {
        let mut st = self.lock();
        let current = self.active.load_full();
        let mut report = ReloadReport {
            time: now_rfc3339(),
            trigger,
            result: Outcome::Failed,
            version_before: current.version,
            version_after: current.version,
            sha256: None,
            diff_summary: None,
            diff: Vec::new(),
            errors: Vec::new(),
            client,
            rollback_to: None,
            swap_micros: None,
            timings: None,
        };
        let bytes = match std::fs::read(&self.routes_path) {
            Ok(b) => b,
            Err(e) => {
                report.errors = vec![format!(
                    "{}:0:0: cannot read file: {e}",
                    self.routes_path.display()
                )];
                return self.fail(&mut st, report);
            }
        };
        let sha = sha256_hex(&bytes);
        report.sha256 = Some(sha.clone());
        if sha == current.sha256 {
            report.result = Outcome::NoOp;
            self.counters.noop.fetch_add(1, Ordering::Relaxed);
            self.metrics.reload(trigger.as_str(), "no_op", None);
            info!("reload ({}): no change (sha256 {sha})", trigger.as_str());
            self.audit.append(&report);
            return report;
        }
        let started = Instant::now();
        let file = self.routes_path.display().to_string();
        let loaded = match routes_from_text_after(&file, bytes, st.reuse.as_ref()) {
            Ok(l) => l,
            Err(errors) => {
                report.errors = errors.0.iter().map(ToString::to_string).collect();
                return self.fail(&mut st, report);
            }
        };
        report.timings = Some(loaded.timings);
        loaded
            .table
            .inherit_positions_after(&current.table, &loaded.carried);
        let table = loaded.table.clone();
        let version = st.history.next_version();
        let t_metrics = Instant::now();
        let metrics = Arc::new(self.metrics.for_table_after(
            &table,
            Some((&current.table, &current.metrics)),
            &loaded.carried,
        ));
        let metrics_us = t_metrics.elapsed().as_micros();
        self.active.store(Arc::new(ActiveTable {
            table: table.clone(),
            version,
            sha256: sha.clone(),
            metrics,
        }));
        self.metrics.set_routing_version(version);
        report.swap_micros = Some(started.elapsed().as_micros() as u64);
        // The lookup of this version's entries for the next reload: built now, after the swap,
        // rather than then, before it.
        if let Some(reuse) = &loaded.reuse {
            reuse.prepare();
        }
        // Counted at the swap, with the routing version: a scrape never sees one without the other.
        self.counters.applied.fetch_add(1, Ordering::Relaxed);
        self.last_success_unix.store(unix_now(), Ordering::Relaxed);
        self.metrics
            .reload(trigger.as_str(), "applied", Some(unix_now()));
        info!(
            "reload ({}): parse {} µs ({} entries parsed, {} unchanged), decode {} µs, validate {} µs, compile {} µs, metrics {metrics_us} µs",
            trigger.as_str(),
            loaded.timings.parse_us,
            loaded.timings.parsed,
            loaded.timings.reused,
            loaded.timings.decode_us,
            loaded.timings.validate_us,
            loaded.timings.compile_us
        );
        report.result = Outcome::Applied;
        report.version_after = version;
        let d = diff(&st.model, &loaded.model);
        self.record_diff(&mut report, &d);
        st.history.push(
            VersionInfo {
                version,
                sha256: sha,
                loaded_at: report.time.clone(),
                trigger: trigger.as_str().into(),
                rollback_to: None,
                rollback_from: None,
            },
            loaded.text.clone(),
            table,
        );
        st.model = loaded.model;
        st.reuse = loaded.reuse;
        st.loaded_at = report.time.clone();
        st.trigger = trigger;
        self.audit.append(&report);
        report
    }

    /// Swaps back to a kept version (default: the one before the running one). Recorded as a
    /// new version with trigger `rollback`.
    pub fn rollback(
        &self,
        to: Option<u64>,
        client: Option<String>,
    ) -> Result<ReloadReport, String> {
        let mut st = self.lock();
        let current = self.active.load_full();
        let target = match to {
            Some(v) => v,
            None => st
                .history
                .list()
                .iter()
                .rev()
                .map(|i| i.version)
                .find(|v| *v < current.version)
                .ok_or("no earlier version to roll back to")?,
        };
        let started = Instant::now();
        let (text, cached) = match st.history.get(target) {
            Some(k) => (k.text.clone(), k.table.clone()),
            None => {
                let kept: Vec<String> = st
                    .history
                    .list()
                    .iter()
                    .map(|i| i.version.to_string())
                    .collect();
                return Err(format!(
                    "version {target} is not kept (kept: {})",
                    kept.join(", ")
                ));
            }
        };
        let sha = sha256_hex(text.as_bytes());
        // A version kept from an earlier process has only its text: compile it now.
        let (table, model) = match cached {
            Some(t) => (t, None),
            None => {
                match routes_from_text_after(
                    &format!("version {target}"),
                    text.as_bytes().to_vec(),
                    st.reuse.as_ref(),
                ) {
                    Ok(l) => (l.table, Some((l.model, l.reuse))),
                    Err(e) => return Err(format!("version {target} no longer compiles: {e}")),
                }
            }
        };
        let carried = Carried::by_identity(&table, &current.table);
        if model.is_some() {
            // Compiled just now: its round-robin positions start where the running table's are.
            table.inherit_positions_after(&current.table, &carried);
        }
        let version = st.history.next_version();
        let metrics = Arc::new(self.metrics.for_table_after(
            &table,
            Some((&current.table, &current.metrics)),
            &carried,
        ));
        self.active.store(Arc::new(ActiveTable {
            table: table.clone(),
            version,
            sha256: sha.clone(),
            metrics,
        }));
        self.metrics.set_routing_version(version);
        let swap_micros = started.elapsed().as_micros() as u64;
        self.counters.rollback.fetch_add(1, Ordering::Relaxed);
        self.last_success_unix.store(unix_now(), Ordering::Relaxed);
        self.metrics
            .reload("rollback", "rollback", Some(unix_now()));
        let (model, reuse) = match model {
            Some(m) => m,
            // Its model, for the diff and the next reload (mostly entries of the running version).
            None => routes_from_text_after("kept", text.as_bytes().to_vec(), st.reuse.as_ref())
                .map(|l| (l.model, l.reuse))
                .unwrap_or_default(),
        };
        if let Some(reuse) = &reuse {
            reuse.prepare();
        }
        let mut report = ReloadReport {
            time: now_rfc3339(),
            trigger: Trigger::Rollback,
            result: Outcome::Rollback,
            version_before: current.version,
            version_after: version,
            sha256: Some(sha.clone()),
            diff_summary: None,
            diff: Vec::new(),
            errors: Vec::new(),
            client,
            rollback_to: Some(target),
            swap_micros: Some(swap_micros),
            timings: None,
        };
        let d = diff(&st.model, &model);
        self.record_diff(&mut report, &d);
        st.history.push(
            VersionInfo {
                version,
                sha256: sha,
                loaded_at: report.time.clone(),
                trigger: "rollback".into(),
                rollback_to: Some(target),
                rollback_from: Some(current.version),
            },
            text,
            table,
        );
        st.model = model;
        st.reuse = reuse;
        st.loaded_at = report.time.clone();
        st.trigger = Trigger::Rollback;
        info!(
            "rollback: version {} -> {version} (restores version {target}) in {swap_micros} µs",
            current.version
        );
        self.audit.append(&report);
        Ok(report)
    }

    fn record_diff(&self, report: &mut ReloadReport, d: &Diff) {
        info!(
            "reload ({}): applied version {} (was {}), {}, parse-to-swap {} µs",
            report.trigger.as_str(),
            report.version_after,
            report.version_before,
            d.summary(),
            report.swap_micros.unwrap_or(0)
        );
        for line in &d.lines {
            info!("  diff: {line}");
        }
        report.diff_summary = Some(d.summary());
        report.diff = d.lines.clone();
    }

    fn fail(&self, st: &mut State, report: ReloadReport) -> ReloadReport {
        error!(
            "reload ({}): rejected, version {} keeps serving; {} error(s):",
            report.trigger.as_str(),
            report.version_before,
            report.errors.len()
        );
        for e in &report.errors {
            error!("  {e}");
        }
        st.last_error = Some(LastError {
            time: report.time.clone(),
            trigger: report.trigger,
            errors: report.errors.clone(),
        });
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        self.metrics.reload(report.trigger.as_str(), "failed", None);
        self.audit.append(&report);
        report
    }

    /// Status for the admin API.
    pub fn status(&self) -> serde_json::Value {
        let st = self.lock();
        let active = self.active.load_full();
        let on_disk = std::fs::read(&self.routes_path)
            .ok()
            .map(|b| sha256_hex(&b));
        serde_json::json!({
            "version": active.version,
            "sha256": active.sha256,
            "loaded_at": st.loaded_at,
            "trigger": st.trigger,
            "routes_file": self.routes_path.display().to_string(),
            "file_sha256": on_disk,
            "matches_file": on_disk.as_deref() == Some(active.sha256.as_str()),
            "routes": active.table.routes().len(),
            "upstreams": active.table.groups().len(),
            "last_error": st.last_error,
            "reloads": {
                "applied": self.counters.applied.load(Ordering::Relaxed),
                "noop": self.counters.noop.load(Ordering::Relaxed),
                "failed": self.counters.failed.load(Ordering::Relaxed),
                "rollback": self.counters.rollback.load(Ordering::Relaxed),
            },
            "audit_log": self.audit.path().display().to_string(),
        })
    }

    pub fn versions(&self) -> Vec<VersionInfo> {
        self.lock().history.list()
    }

    pub fn version_text(&self, version: u64) -> Option<(VersionInfo, Arc<str>)> {
        let st = self.lock();
        st.history
            .get(version)
            .map(|k| (k.info.clone(), k.text.clone()))
    }

    /// The running table (for `/routes`).
    pub fn table(&self) -> Arc<RouteTable> {
        self.active.load().table.clone()
    }

    /// Logs a warning and drops nothing: for triggers that cannot run (e.g. watcher errors).
    pub fn note(&self, what: &str) {
        warn!("reload: {what}");
    }
}
