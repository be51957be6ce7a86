//! gateway.yaml on SIGHUP and `POST /reload`: read and checked again; the keys that can change
//! live (see `config::settings::live`) are applied at once, the others are named in the log and the
//! answer as waiting for `dyegate upgrade` (or a restart). A file with errors changes nothing
//! and says why, located. A live key that cannot be applied now (an access log file that cannot
//! be opened, a level while `RUST_LOG` decides) is named with why in `warnings`, and stays as
//! it was. Before, every edit of gateway.yaml was ignored with "no change".

use crate::config::settings::live::{gateway_change, GatewayChange};
use crate::config::settings::model::AccessLogConfig;
use crate::config::Gateway;
use crate::downstream::LiveLimits;
use crate::proxy::live::{Live, SharedLive};
use crate::telemetry::access_log::Destination;
use crate::telemetry::log_level::LevelSource;
use crate::telemetry::sample_ratio::SampleRatio;
use crate::telemetry::AccessLog;
use log::{error, info, warn};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What a re-read of gateway.yaml can change in the running process.
pub struct LiveHandles {
    /// `server_header`, `forwarded`, `debug.trusted_sources`.
    pub live: SharedLive,
    /// `limits.header_read_timeout_ms`, `limits.max_request_header_bytes`.
    pub limits: LiveLimits,
    /// `tracing.sample_ratio`.
    pub sample_ratio: SampleRatio,
    /// `access_log`: on, off, its path.
    pub access_log: AccessLog,
    /// `log.level`, unless `RUST_LOG` decides.
    pub log_level: LevelSource,
}

pub struct GatewayReload {
    /// The gateway.yaml the process started from (`None`: defaults, nothing to re-read).
    file: Option<PathBuf>,
    /// The settings in effect: the startup ones, with the live keys applied since.
    running: Mutex<Gateway>,
    handles: LiveHandles,
}

/// What a re-read of gateway.yaml did (the `gateway` field of `POST /reload`'s answer).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GatewayReport {
    pub file: String,
    #[serde(flatten)]
    pub change: GatewayChange,
    /// The file's errors (located): nothing was applied.
    pub errors: Vec<String>,
    /// Live keys changed in the file but not applied now, each with why (the rest applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl GatewayReload {
    pub fn new(gw: &Gateway, handles: LiveHandles) -> GatewayReload {
        GatewayReload {
            file: gw.file.clone(),
            running: Mutex::new(gw.clone()),
            handles,
        }
    }

    /// Reads gateway.yaml again and applies what can change live; `None` without a file.
    pub fn reload(&self) -> Option<GatewayReport> {
        let file = self.file.as_ref()?;
        let mut report = GatewayReport {
            file: file.display().to_string(),
            change: GatewayChange::default(),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let new = match Gateway::load(Some(file)) {
            Ok(new) => new,
            Err(errors) => {
                report.errors = errors.0.iter().map(ToString::to_string).collect();
                error!(
                    "gateway.yaml {}: not applied, {} error(s):",
                    report.file,
                    report.errors.len()
                );
                for e in &report.errors {
                    error!("  {e}");
                }
                return Some(report);
            }
        };
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        report.change = gateway_change(&running.config, &new.config);
        if !report.change.applied_live.is_empty() {
            self.apply(&mut running, &new, &mut report);
        }
        for w in &report.warnings {
            warn!("gateway.yaml {}: {w}", report.file);
        }
        if !report.change.applied_live.is_empty() {
            info!(
                "gateway.yaml {}: applied {}",
                report.file,
                report.change.applied_live.join(", ")
            );
        }
        if !report.change.needs_upgrade.is_empty() {
            warn!(
                "gateway.yaml {}: {} changed, not applied until `dyegate upgrade` (or a restart)",
                report.file,
                report.change.needs_upgrade.join(", ")
            );
        }
        if report.change.is_empty() && report.warnings.is_empty() {
            info!("gateway.yaml {}: no change", report.file);
        }
        Some(report)
    }

    /// Applies the live keys of `new` that changed, and records them in `running`; a key that
    /// cannot be applied now moves from `applied_live` to `warnings`.
    fn apply(&self, running: &mut Gateway, new: &Gateway, report: &mut GatewayReport) {
        let h = &self.handles;
        let applied = report.change.applied_live.clone();
        let changed = |key: &str| applied.contains(&key);
        // Read per request or per connection: swapped whole (the unchanged ones are equal).
        // `tls:` (and its `hsts`) waits for an upgrade: the running value stays.
        let hsts = h.live.load().hsts.clone();
        h.live.store(Arc::new(Live {
            hsts,
            ..Live::of(new)
        }));
        h.limits.rcu(|l| {
            let mut l = **l;
            l.header_read_timeout = new.limits.header_read_timeout;
            l.max_request_header_bytes = new.limits.max_request_header_bytes;
            l
        });
        let r = &mut *running;
        r.server_header = new.server_header.clone();
        r.forwarded = new.forwarded.clone();
        r.debug_trusted = new.debug_trusted.clone();
        r.limits.header_read_timeout = new.limits.header_read_timeout;
        r.limits.max_request_header_bytes = new.limits.max_request_header_bytes;
        let c = &mut r.config;
        c.server_header = new.config.server_header.clone();
        c.forwarded = new.config.forwarded.clone();
        c.debug.trusted_sources = new.config.debug.trusted_sources.clone();
        c.upgrade = new.config.upgrade.clone();
        c.limits.header_read_timeout_ms = new.config.limits.header_read_timeout_ms;
        c.limits.max_request_header_bytes = new.config.limits.max_request_header_bytes;

        if changed("tracing.sample_ratio") {
            h.sample_ratio.set(new.tracing.sample_ratio);
            r.tracing.sample_ratio = new.tracing.sample_ratio;
            r.config.tracing.sample_ratio = new.config.tracing.sample_ratio;
        }
        if changed("access_log") || changed("access_log.path") {
            self.switch_access_log(r, new, report);
        }
        if changed("log.level") {
            let level = new.config.log.level;
            if h.log_level.apply(level) {
                r.config.log = new.config.log.clone();
            } else {
                not_applied(
                    report,
                    "log.level",
                    format!(
                        "log.level ({}) not applied: RUST_LOG is set and decides the log level",
                        level.as_str()
                    ),
                );
            }
        }
    }

    /// `access_log` turned on or off, or moved: the writer switches (the new file is opened
    /// first: one that cannot be opened leaves the log as it was).
    fn switch_access_log(&self, r: &mut Gateway, new: &Gateway, report: &mut GatewayReport) {
        let log = &self.handles.access_log;
        let key = match r.config.access_log.is_some() == new.config.access_log.is_some() {
            true => "access_log.path",
            false => "access_log",
        };
        match log.switch(Destination::of(&new.access_log)) {
            Ok(()) => {
                r.access_log = new.access_log.clone();
                // The queue in effect is the one allocated at start, whatever the file says.
                r.config.access_log = (new.config.access_log.as_ref()).map(|a| AccessLogConfig {
                    queue: log.capacity(),
                    ..a.clone()
                });
                let asked = new.config.access_log.as_ref().map(|a| a.queue);
                if asked.is_some_and(|q| q != log.capacity())
                    && !report.change.needs_upgrade.contains(&"access_log.queue")
                {
                    report.change.needs_upgrade.push("access_log.queue");
                }
            }
            Err(why) => not_applied(
                report,
                key,
                format!("{key} not applied, the access log is as it was: {why}"),
            ),
        }
    }
}

/// `key` changed in the file but could not be applied: said, and no longer listed as applied.
fn not_applied(report: &mut GatewayReport, key: &str, why: String) {
    report.change.applied_live.retain(|k| *k != key);
    report.warnings.push(why);
}
