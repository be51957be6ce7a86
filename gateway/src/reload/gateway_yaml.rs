//! gateway.yaml on SIGHUP and `POST /reload`: read and checked again; the keys that can change
//! live (see `config::live`) are applied at once, the others are named in the log and the
//! answer as waiting for `dyegate upgrade` (or a restart). A file with errors changes nothing
//! and says why, located. Before, every edit of gateway.yaml was ignored with "no change".

use crate::config::live::{gateway_change, GatewayChange};
use crate::config::Gateway;
use crate::downstream::LiveLimits;
use crate::proxy::live::{Live, SharedLive};
use log::{error, info, warn};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct GatewayReload {
    /// The gateway.yaml the process started from (`None`: defaults, nothing to re-read).
    file: Option<PathBuf>,
    /// The settings in effect: the startup ones, with the live keys applied since.
    running: Mutex<Gateway>,
    live: SharedLive,
    limits: LiveLimits,
}

/// What a re-read of gateway.yaml did (the `gateway` field of `POST /reload`'s answer).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GatewayReport {
    pub file: String,
    #[serde(flatten)]
    pub change: GatewayChange,
    /// The file's errors (located): nothing was applied.
    pub errors: Vec<String>,
}

impl GatewayReload {
    pub fn new(gw: &Gateway, live: SharedLive, limits: LiveLimits) -> GatewayReload {
        GatewayReload {
            file: gw.file.clone(),
            running: Mutex::new(gw.clone()),
            live,
            limits,
        }
    }

    /// Reads gateway.yaml again and applies what can change live; `None` without a file.
    pub fn reload(&self) -> Option<GatewayReport> {
        let file = self.file.as_ref()?;
        let mut report = GatewayReport {
            file: file.display().to_string(),
            change: GatewayChange::default(),
            errors: Vec::new(),
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
            // `tls:` (and its `hsts`) waits for an upgrade: the running value stays.
            let hsts = self.live.load().hsts.clone();
            self.live.store(Arc::new(Live {
                hsts,
                ..Live::of(&new)
            }));
            self.limits.rcu(|l| {
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
        if report.change.is_empty() {
            info!("gateway.yaml {}: no change", report.file);
        }
        Some(report)
    }
}
