//! [`Handover`]: this process's side of a handover. What it collects when it hands over
//! (counters, target health, DNS addresses, made ticket keys, the lineage), what it restores
//! when it takes over (each part into its own component, as the components are made), and the
//! lineage (generation and handovers) `/status` shows.

use super::counters::{self, Carried, Counters};
use super::file::{self, Taken};
use super::format::{Final, HandoverKind, HandoverRecord, Lineage, State, FORMAT};
use crate::dns::DnsNames;
use crate::health::{HealthRegistry, TargetRecord};
use crate::rollout::Controller;
use crate::telemetry::window::SecondRecord;
use crate::telemetry::Metrics;
use crate::tls::Certificates;
use log::{info, warn};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What this process's components are: the sources of the state it hands over.
pub struct Parts {
    pub metrics: Arc<Metrics>,
    pub certificates: Option<Arc<Certificates>>,
    pub dns: Arc<DnsNames>,
    /// Which rollout windows there are (their figures are in `metrics`).
    pub rollouts: Arc<Controller>,
}

impl Parts {
    pub fn new(
        metrics: &Arc<Metrics>,
        certificates: &Option<Arc<Certificates>>,
        dns: &Arc<DnsNames>,
        rollouts: &Arc<Controller>,
    ) -> Parts {
        Parts {
            metrics: metrics.clone(),
            certificates: certificates.clone(),
            dns: dns.clone(),
            rollouts: rollouts.clone(),
        }
    }
}

/// How a state is written: an upgrade, or a revert with its reason; the watch the writer keeps
/// on the next process; counts to add to its own (a revert: what the failed process counted).
pub struct Outgoing {
    pub kind: HandoverKind,
    pub reason: Option<String>,
    pub watch: Option<Duration>,
    pub extra: Counters,
}

pub struct Handover {
    state_dir: PathBuf,
    pid_file: PathBuf,
    parts: Parts,
    lineage: Mutex<Lineage>,
    /// What the old process counted: added to this process's own counts in every scrape.
    carried: Carried,
    /// This process's own counts when it last wrote its state: what it counts after that is
    /// handed on when it exits.
    written: Mutex<Option<Counters>>,
    /// The target health taken, until the registry exists (it is made after the state is
    /// taken); then the registry, to hand its state on.
    health: Mutex<HealthPart>,
    /// The process this one replaced, while it watches this one: (its pid, the watch's end).
    watched_by: Mutex<Option<(u32, Instant)>>,
    /// The process this one took over from (its final counts are waited for).
    from_pid: Mutex<Option<u32>>,
}

/// The target health taken, until the registry exists (with the milliseconds that passed since
/// its export); then the registry.
#[derive(Default)]
struct HealthPart {
    taken: Option<(Vec<(SocketAddr, TargetRecord)>, u64)>,
    registry: Option<Arc<HealthRegistry>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Handover {
    pub fn new(gw: &crate::config::Gateway, parts: Parts) -> Arc<Handover> {
        Arc::new(Handover {
            state_dir: gw.state_dir.clone(),
            pid_file: gw.pid_file.clone(),
            parts,
            lineage: Mutex::new(Lineage::fresh(crate::stamp::now_rfc3339())),
            carried: Carried::default(),
            written: Mutex::new(None),
            health: Mutex::default(),
            watched_by: Mutex::new(None),
            from_pid: Mutex::new(None),
        })
    }

    /// The Prometheus text this process serves: its own counts plus the ones carried over.
    pub fn scrape(&self) -> String {
        self.carried.apply(self.parts.metrics.render())
    }

    /// The lineage, with this process named in the handover that started it (the state is
    /// taken before Pingora's daemonizing fork, when the serving pid is not known yet).
    pub fn lineage(&self) -> Lineage {
        let mut l = lock(&self.lineage).clone();
        if let Some(last) = l.handovers.last_mut().filter(|h| h.to_pid == 0) {
            last.to_pid = std::process::id();
        }
        l
    }

    /// Adds a handover this process made to its lineage (an upgrade it reverts: the process
    /// that takes over after the revert counts both).
    pub fn note(&self, record: HandoverRecord) {
        let mut l = lock(&self.lineage);
        *l = l.next(record);
    }

    /// Everything handed over now.
    fn snapshot(&self, out: &Outgoing, own: &Counters) -> State {
        let registry = lock(&self.health).registry.clone();
        State {
            format: FORMAT,
            from_pid: std::process::id(),
            written_at: crate::stamp::now_rfc3339(),
            kind: out.kind,
            reason: out.reason.clone(),
            lineage: self.lineage(),
            watch_ms: out.watch.map(|w| w.as_millis() as u64),
            ticket_keys: super::tickets::export(self.parts.certificates.as_deref()),
            written_unix_ms: unix_ms(),
            counters: counters::sum(own, &out.extra),
            health: registry.map(|r| r.export()).unwrap_or_default(),
            dns: self.parts.dns.export(),
            windows: self.windows(),
            events: self.parts.rollouts.outbox().hand_over(),
            shadow_tally: (self.parts.metrics.shadow_tally())
                .export(crate::telemetry::window::now_second()),
        }
    }

    /// The rollouts' windows, as their last seconds.
    fn windows(&self) -> Vec<(String, String, Vec<SecondRecord>)> {
        let now = crate::telemetry::window::now_second();
        (self.parts.rollouts.window_pairs().into_iter())
            .map(|(route, group)| {
                let seconds = self
                    .parts
                    .metrics
                    .rollout_window(&route, &group)
                    .export(now);
                (route, group, seconds)
            })
            .filter(|(_, _, seconds)| !seconds.is_empty())
            .collect()
    }

    /// Writes the state; a failure is logged (the new process then starts fresh).
    pub fn write(&self, out: Outgoing) {
        let own = counters::snapshot(&self.scrape());
        let state = self.snapshot(&out, &own);
        *lock(&self.written) = Some(own);
        match file::write(&self.state_dir, &state) {
            Ok(()) => info!(
                "handover: state written for the next process (generation {}, {} counter families, {} targets, {} DNS names, {} rollout windows, {} rollout events waiting)",
                state.lineage.generation + 1,
                state.counters.families.len(),
                state.health.len(),
                state.dns.len(),
                state.windows.len(),
                (state.events.iter()).map(|q| q.events.len()).sum::<usize>()
            ),
            Err(e) => {
                warn!("handover: cannot write the state ({e}); the next process starts fresh")
            }
        }
    }

    /// This process's own counts when it wrote its state (`None`: it has not).
    pub fn written(&self) -> Option<Counters> {
        lock(&self.written).clone()
    }

    /// At exit, after a handover: what this process counted since it wrote its state, for the
    /// process serving now (named in the pid file).
    pub fn write_final(&self) {
        let pid_file = &self.pid_file;
        let Some(written) = lock(&self.written).clone() else {
            return;
        };
        let me = std::process::id();
        let to_pid = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .filter(|p| *p != me);
        let Some(to_pid) = to_pid else {
            warn!(
                "handover: no process to hand the last counts to (the pid file names none other)"
            );
            return;
        };
        let delta = counters::delta(&counters::snapshot(&self.scrape()), &written);
        let f = Final {
            format: FORMAT,
            from_pid: me,
            to_pid,
            counters: delta,
        };
        match file::write_final(&self.state_dir, &f) {
            Ok(()) => info!("handover: the counts since the handover left for pid {to_pid}"),
            Err(e) => warn!("handover: the counts since the handover are lost: {e}"),
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
        *lock(&self.lineage) = state.lineage.next(record);
        *lock(&self.from_pid) = Some(state.from_pid);
        if let Some(ms) = state.watch_ms {
            let end = Instant::now() + Duration::from_millis(ms);
            *lock(&self.watched_by) = Some((state.from_pid, end));
        }
        super::tickets::restore(self.parts.certificates.as_deref(), &state.ticket_keys);
        self.carried.add(&state.counters);
        let adopted = self.parts.dns.adopt(&state.dns);
        if !adopted.is_empty() {
            info!(
                "handover: DNS names without an answer yet take the old process's addresses: {}",
                adopted.join(", ")
            );
        }
        for (route, group, seconds) in &state.windows {
            self.parts
                .metrics
                .rollout_window(route, group)
                .restore(seconds);
        }
        self.parts.rollouts.outbox().take_over(&state.events);
        (self.parts.metrics.shadow_tally()).restore(&state.shadow_tally);
        let passed = unix_ms().saturating_sub(state.written_unix_ms);
        lock(&self.health).taken = Some((state.health.clone(), passed));
        info!(
            "handover: state of pid {} taken (generation {})",
            state.from_pid,
            state.lineage.generation + 1
        );
    }

    /// The health registry, once made: takes the handed-over target states (an ejected target
    /// stays ejected for what is left of its time; an unhealthy one stays unhealthy until its
    /// checks say otherwise), and is read when this process hands over in turn.
    pub fn attach_health(&self, registry: Arc<HealthRegistry>) {
        let mut h = lock(&self.health);
        if let Some((records, passed)) = h.taken.take() {
            let n = registry.restore(&records, passed);
            info!("handover: health of {n} target(s) taken over");
        }
        h.registry = Some(registry);
    }

    /// The process this one took over from, when it did.
    pub fn predecessor(&self) -> Option<u32> {
        *lock(&self.from_pid)
    }

    /// Adds counts handed on later (the predecessor's final counts).
    pub fn carry(&self, more: &Counters) {
        self.carried.add(more);
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    /// The process that watches this one now (it replaced it less than `upgrade.watch_ms`
    /// ago and still runs): its pid and how long the watch still runs.
    pub fn watched_by(&self) -> Option<(u32, Duration)> {
        let (pid, end) = (*lock(&self.watched_by))?;
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

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
