//! [`Certificates`]: the live certificate set of the HTTPS listeners, and their session ticket
//! keys. Loaded at startup, read again on a file change, SIGHUP or `POST /reload`; a reload is
//! all or nothing: every certificate entry and every ticket key file must load and check, or
//! what is being served stays as it was (reported in the log, the status and
//! `dyegate_tls_certificate_reloads_total{result="failure"}`).

use super::certificate::{rfc3339, unix, Certificate};
use super::metrics::TlsMetrics;
use super::sni::SniTable;
use super::ticket_keys;
use super::tickets::{TicketKeys, Ticketer};
use crate::config::{DownstreamTls, Issue};
use crate::reload::Fingerprint;
use crate::reload::Trigger;
use arc_swap::ArcSwap;
use log::{info, warn};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// The certificate set being served and what the last reads of it found.
pub struct Certificates {
    settings: DownstreamTls,
    table: Arc<ArcSwap<SniTable>>,
    /// The session ticket keys (from the key files, or made by the process).
    tickets: Arc<Ticketer>,
    metrics: TlsMetrics,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The files as they were when last read (cert, key for each entry, in order).
    seen: Vec<Option<Fingerprint>>,
    loaded_at: String,
    trigger: &'static str,
    last_error: Option<LastError>,
    /// Whether the last read failed (the set served is then older than the files).
    failing: bool,
}

#[derive(Debug, Clone, Serialize)]
struct LastError {
    at: String,
    trigger: &'static str,
    errors: Vec<String>,
}

/// What one read of the certificate files did, as `POST /reload` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsReload {
    /// `applied` (the set read now is served), `failed` (the old set kept).
    pub result: &'static str,
    pub certificates: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Reads every entry and every ticket key file; all errors, one per failing entry, each with
/// the field path of the file at fault (`tls.certificates[1].key`,
/// `tls.session_tickets.key_files[0]`), to be located in gateway.yaml by `dyegate check`.
pub fn load_all(settings: &DownstreamTls, now: SystemTime) -> Result<Vec<Certificate>, Vec<Issue>> {
    load_material(settings, now).map(|(certificates, _)| certificates)
}

/// The certificates, and the ticket keys of the key files (`None`: no key files).
fn load_material(
    settings: &DownstreamTls,
    now: SystemTime,
) -> Result<(Vec<Certificate>, Option<TicketKeys>), Vec<Issue>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (i, paths) in settings.certificates.iter().enumerate() {
        match Certificate::load(paths, now) {
            Ok(c) => loaded.push(c),
            Err(e) => errors.push(Issue::new(
                format!("tls.certificates[{i}].{}", e.file.field()),
                e.message,
            )),
        }
    }
    let tickets = &settings.session_tickets;
    let keys = if tickets.key_files.is_empty() {
        None
    } else {
        match ticket_keys::read_files(tickets, super::certificate::unix(now).max(0) as u64) {
            Ok(keys) => Some(keys),
            Err(e) => {
                errors.extend(e);
                None
            }
        }
    };
    if errors.is_empty() {
        Ok((loaded, keys))
    } else {
        Err(errors)
    }
}

/// `path: message`, as logged and shown in the status.
fn lines(issues: Vec<Issue>) -> Vec<String> {
    issues
        .into_iter()
        .map(|i| format!("{}: {}", i.path, i.message))
        .collect()
}

impl Certificates {
    /// The startup load: every entry must load (there is nothing older to serve).
    pub fn load(settings: &DownstreamTls, metrics: TlsMetrics) -> Result<Certificates, Vec<Issue>> {
        let seen = fingerprints(settings);
        let now = SystemTime::now();
        let (loaded, keys) = load_material(settings, now)?;
        let table = SniTable::new(loaded, settings.default);
        log_loaded(&table, Trigger::Startup.kind());
        let tickets = &settings.session_tickets;
        let keys = keys
            .or_else(|| ticket_keys::generate(super::certificate::unix(now).max(0) as u64))
            .unwrap_or_default();
        let lifetime = u32::try_from(tickets.lifetime.as_secs()).unwrap_or(u32::MAX);
        Ok(Certificates {
            settings: settings.clone(),
            table: Arc::new(ArcSwap::from_pointee(table)),
            tickets: Arc::new(Ticketer::new(keys, lifetime, tickets.enabled)),
            metrics,
            state: Mutex::new(State {
                seen,
                loaded_at: crate::stamp::now_rfc3339(),
                trigger: Trigger::Startup.kind(),
                last_error: None,
                failing: false,
            }),
        })
    }

    pub fn settings(&self) -> &DownstreamTls {
        &self.settings
    }

    /// The handle the resolver and the expiry gauge read.
    pub fn table(&self) -> Arc<ArcSwap<SniTable>> {
        self.table.clone()
    }

    pub fn metrics(&self) -> &TlsMetrics {
        &self.metrics
    }

    /// The session ticket keys every HTTPS listener encrypts and decrypts tickets with.
    pub fn tickets(&self) -> Arc<Ticketer> {
        self.tickets.clone()
    }

    /// Every certificate and key file, for the watcher.
    pub fn files(&self) -> Vec<PathBuf> {
        files(&self.settings)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads every file again and serves the result, or keeps the set served when any entry
    /// fails. Blocking (file reads, parsing): call it off the async workers.
    pub fn reload(&self, trigger: &Trigger) -> TlsReload {
        let mut state = self.lock();
        self.reload_locked(&mut state, trigger.kind())
    }

    /// [`Self::reload`] when a file differs from when it was last read (a watcher event that
    /// touched nothing of ours, or the same bytes written again, changes nothing).
    pub fn reload_if_changed(&self, trigger: &Trigger) -> Option<TlsReload> {
        let mut state = self.lock();
        if fingerprints(&self.settings) == state.seen {
            return None;
        }
        Some(self.reload_locked(&mut state, trigger.kind()))
    }

    fn reload_locked(&self, state: &mut State, trigger: &'static str) -> TlsReload {
        // Fingerprints first: a write landing during the read below is seen as a change next
        // time instead of being taken as read.
        state.seen = fingerprints(&self.settings);
        match load_material(&self.settings, SystemTime::now()) {
            Ok((loaded, keys)) => {
                let n = loaded.len();
                let table = SniTable::new(loaded, self.settings.default);
                log_loaded(&table, trigger);
                self.table.store(Arc::new(table));
                if let Some(keys) = keys {
                    info!(
                        "session ticket keys loaded ({trigger}): {} (the first encrypts)",
                        key_names(&keys).join(", ")
                    );
                    self.tickets.swap(keys);
                }
                state.loaded_at = crate::stamp::now_rfc3339();
                state.trigger = trigger;
                state.failing = false;
                self.metrics.reloaded(true);
                TlsReload {
                    result: "applied",
                    certificates: n,
                    errors: Vec::new(),
                }
            }
            Err(errors) => {
                let errors = lines(errors);
                warn!(
                    "certificates: reload ({trigger}) refused, the served certificates are kept: {}",
                    errors.join("; ")
                );
                state.last_error = Some(LastError {
                    at: crate::stamp::now_rfc3339(),
                    trigger,
                    errors: errors.clone(),
                });
                state.failing = true;
                self.metrics.reloaded(false);
                TlsReload {
                    result: "failed",
                    certificates: self.table.load().certificates().len(),
                    errors,
                }
            }
        }
    }

    /// The `tls` object of `GET /status`.
    pub fn status(&self) -> Value {
        let now = SystemTime::now();
        let table = self.table.load();
        let default = table.default_index();
        let certificates: Vec<Value> = (table.certificates().iter().enumerate())
            .map(|(i, c)| {
                json!({
                    "name": c.name(),
                    "names": c.names,
                    "cert": c.paths.cert.display().to_string(),
                    "key": c.paths.key.display().to_string(),
                    "not_after": rfc3339(c.not_after),
                    "seconds_left": c.seconds_left(now),
                    "default": i == default,
                })
            })
            .collect();
        let state = self.lock();
        json!({
            "listen": self.settings.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "min_version": self.settings.min_version.as_str(),
            "h2": self.settings.h2,
            "certificates": certificates,
            "session_tickets": self.tickets_status(),
            "loaded_at": state.loaded_at,
            "trigger": state.trigger,
            "failing": state.failing,
            "last_error": state.last_error,
        })
    }
}

impl Certificates {
    /// The `session_tickets` object of the status: on or off, where the keys come from, and
    /// the key names (the first 16 bytes of each key, sent in the clear in every ticket).
    fn tickets_status(&self) -> Value {
        let keys = self.tickets.keys();
        let t = &self.settings.session_tickets;
        json!({
            "enabled": t.enabled,
            "keys": if keys.generated { "generated" } else { "files" },
            "key_names": key_names(&keys),
            "lifetime_s": t.lifetime.as_secs(),
        })
    }
}

fn key_names(keys: &TicketKeys) -> Vec<String> {
    keys.keys
        .iter()
        .map(|k| ticket_keys::hex(&k.name))
        .collect()
}

/// Every certificate and key file, then every ticket key file.
fn files(settings: &DownstreamTls) -> Vec<PathBuf> {
    (settings.certificates.iter())
        .flat_map(|c| [c.cert.clone(), c.key.clone()])
        .chain(settings.session_tickets.key_files.iter().cloned())
        .collect()
}

fn fingerprints(settings: &DownstreamTls) -> Vec<Option<Fingerprint>> {
    files(settings).iter().map(|f| Fingerprint::of(f)).collect()
}

fn log_loaded(table: &SniTable, trigger: &str) {
    let now = unix(SystemTime::now());
    let names: Vec<String> = (table.certificates().iter())
        .map(|c| {
            format!(
                "{} (until {}, {} days)",
                c.name(),
                rfc3339(c.not_after),
                (c.not_after - now) / 86_400
            )
        })
        .collect();
    info!("certificates loaded ({trigger}): {}", names.join(", "));
}
