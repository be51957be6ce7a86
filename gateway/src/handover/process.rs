//! [`Handover`]: the handles the state is collected from and restored into, and the lineage
//! (generation and handovers) `/status` shows.

use super::file::{self, Taken};
use super::format::{HandoverKind, HandoverRecord, Lineage, State, TicketKeyRecord, FORMAT};
use crate::tls::ticket_keys::hex;
use crate::tls::tickets::{TicketKey, TicketKeys};
use crate::tls::Certificates;
use log::{info, warn};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Handover {
    state_dir: PathBuf,
    lineage: Mutex<Lineage>,
    certificates: Option<Arc<Certificates>>,
    /// The process this one replaced, while it watches this one: (its pid, the watch's end).
    watched_by: Mutex<Option<(u32, Instant)>>,
}

impl Handover {
    pub fn new(state_dir: PathBuf, certificates: Option<Arc<Certificates>>) -> Arc<Handover> {
        Arc::new(Handover {
            state_dir,
            lineage: Mutex::new(Lineage::fresh(crate::stamp::now_rfc3339())),
            certificates,
            watched_by: Mutex::new(None),
        })
    }

    /// The lineage, with this process named in the handover that started it (the state is
    /// taken before Pingora's daemonizing fork, when the serving pid is not known yet).
    pub fn lineage(&self) -> Lineage {
        let mut l = self
            .lineage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(last) = l.handovers.last_mut().filter(|h| h.to_pid == 0) {
            last.to_pid = std::process::id();
        }
        l
    }

    /// Everything handed over now; `watch`: how long this process watches the next one.
    pub fn snapshot(
        &self,
        kind: HandoverKind,
        reason: Option<String>,
        watch: Option<Duration>,
    ) -> State {
        State {
            format: FORMAT,
            from_pid: std::process::id(),
            written_at: crate::stamp::now_rfc3339(),
            kind,
            reason,
            lineage: self.lineage(),
            watch_ms: watch.map(|w| w.as_millis() as u64),
            ticket_keys: self.generated_ticket_keys(),
        }
    }

    /// Adds a handover this process made to its lineage (an upgrade it reverts: the process
    /// that takes over after the revert counts both).
    pub fn note(&self, record: HandoverRecord) {
        let mut l = self.lineage.lock().unwrap_or_else(|p| p.into_inner());
        *l = l.next(record);
    }

    /// Writes the state; a failure is logged (the new process then starts fresh).
    pub fn write(&self, kind: HandoverKind, reason: Option<String>, watch: Option<Duration>) {
        let state = self.snapshot(kind, reason, watch);
        match file::write(&self.state_dir, &state) {
            Ok(()) => info!(
                "handover: state written for the next process (generation {})",
                state.lineage.generation + 1
            ),
            Err(e) => {
                warn!("handover: cannot write the state ({e}); the next process starts fresh")
            }
        }
    }

    /// After the sockets arrived (`dyegate run --upgrade`), before serving: takes the state
    /// the old process wrote and restores it; without a usable one, starts fresh, saying why.
    pub fn receive(&self) {
        let state = match file::take(&self.state_dir, crate::upgrade::running::alive) {
            Taken::State(s) => s,
            Taken::Nothing => {
                warn!("handover: no state from the old process; counters and health start fresh");
                return;
            }
            Taken::Unusable(why) => {
                warn!("handover: state not used, starting fresh: {why}");
                return;
            }
        };
        let record = HandoverRecord {
            at: state.written_at.clone(),
            kind: state.kind,
            from_pid: state.from_pid,
            to_pid: 0,
            reason: state.reason.clone(),
        };
        *self.lineage.lock().unwrap_or_else(|p| p.into_inner()) = state.lineage.next(record);
        if let Some(ms) = state.watch_ms {
            let end = Instant::now() + Duration::from_millis(ms);
            *self.watched_by.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((state.from_pid, end));
        }
        self.restore_ticket_keys(&state.ticket_keys);
        info!(
            "handover: state of pid {} taken (generation {})",
            state.from_pid,
            state.lineage.generation + 1
        );
    }

    /// The keys this process made itself (none when they come from key files).
    fn generated_ticket_keys(&self) -> Vec<TicketKeyRecord> {
        let Some(certs) = &self.certificates else {
            return Vec::new();
        };
        let keys = certs.tickets().keys();
        if !keys.generated {
            return Vec::new();
        }
        (keys.keys.iter())
            .map(|k| TicketKeyRecord {
                material: hex(k.material()),
                since: k.since,
            })
            .collect()
    }

    /// The old process's generated keys, unless this one reads key files (those rule).
    fn restore_ticket_keys(&self, records: &[TicketKeyRecord]) {
        let Some(certs) = &self.certificates else {
            return;
        };
        let tickets = certs.tickets();
        if records.is_empty() || !tickets.keys().generated {
            return;
        }
        let keys: Vec<TicketKey> = (records.iter())
            .filter_map(|r| TicketKey::from_material(&unhex(&r.material)?, r.since))
            .collect();
        if keys.len() == records.len() {
            info!("handover: {} session ticket key(s) taken over", keys.len());
            tickets.swap(TicketKeys {
                keys,
                generated: true,
            });
        } else {
            warn!("handover: session ticket keys unreadable; new ones made, sessions from before the upgrade make full handshakes");
        }
    }

    /// The process that watches this one now (it replaced it less than `upgrade.watch_ms`
    /// ago and still runs): its pid and how long the watch still runs.
    pub fn watched_by(&self) -> Option<(u32, Duration)> {
        let w = *self.watched_by.lock().unwrap_or_else(|p| p.into_inner());
        let (pid, end) = w?;
        let left = end.checked_duration_since(Instant::now())?;
        crate::upgrade::running::alive(pid).then_some((pid, left))
    }

    /// The `process` object of `/status`.
    pub fn status(&self) -> Value {
        let l = self.lineage();
        let watch = self
            .watched_by()
            .map(|(pid, left)| json!({ "by_pid": pid, "ends_in_ms": left.as_millis() as u64 }));
        json!({
            "generation": l.generation,
            "lineage_started_at": l.started_at,
            "handovers": l.handovers,
            "watched": watch,
        })
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
