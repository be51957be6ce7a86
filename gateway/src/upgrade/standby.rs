//! The old process after `dyegate upgrade` handed its sockets over: it stays alive (not
//! accepting) for `upgrade.watch_ms`, holding duplicates of its listening sockets
//! ([`HeldSockets`]), and probes the new process's `/readyz` every 200 ms ([`Watch`] judges).
//! When the new process exits, stops answering, or fails too many requests, the old process
//! stops it (SIGTERM) and starts its own binary again (`/proc/self/exe run --upgrade`), which
//! takes the held sockets over the upgrade socket, with the state handed over as in any
//! upgrade: the old binary serves again. Connections arriving meanwhile wait in the held
//! sockets' queues; none is refused. The verdict goes to the audit log, where `dyegate upgrade`
//! reads it.
//!
//! Pingora cannot restart the services of a process that has begun its shutdown, nor pause a
//! listener's accepting without one: so "the old process serves again" is the old binary, in a
//! process the old one starts, in its cgroup (docs/pingora-upstream.md §21).

use super::running::alive;
use super::sockets::HeldSockets;
use super::verdict::{self, Outcome, Verdict};
use super::watch::{self, Probe, Reason, Watch};
use crate::admin::client;
use crate::config::settings::upgrade::UpgradeSettings;
use crate::config::Gateway;
use crate::handover::counters::{self, Counters};
use crate::handover::format::{HandoverKind, HandoverRecord};
use crate::handover::{Handover, Outgoing};
use crate::lifecycle::Lifecycle;
use log::{error, info, warn};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PROBE_EVERY: Duration = Duration::from_millis(200);
/// A probe's limits: to connect, to read the answer.
const PROBE_LIMITS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(1));
/// How long the old binary's new process has to take the sockets and answer `/readyz`.
const REVERT_WITHIN: Duration = Duration::from_secs(30);

/// SIGTERM or SIGINT during the watch (a handler can reach nothing else: one atomic store).
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn stop_requested(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// What the watch needs from gateway.yaml, taken at startup.
pub struct Standby {
    file: Option<PathBuf>,
    settings: UpgradeSettings,
    admin: SocketAddr,
    /// The config's own admin token ([`Gateway::own_token`]; `/metrics` may need it).
    token: Option<String>,
    pid_file: PathBuf,
    upgrade_sock: PathBuf,
    state_dir: PathBuf,
    audit_log: PathBuf,
    grace: Duration,
    handover: Arc<Handover>,
    lifecycle: Arc<Lifecycle>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Standby {
    pub fn new(gw: &Gateway, handover: Arc<Handover>, lifecycle: Arc<Lifecycle>) -> Arc<Standby> {
        Arc::new(Standby {
            file: gw.file.clone(),
            settings: gw.upgrade,
            admin: gw.admin_listen,
            token: gw.own_token().map(str::to_string),
            pid_file: gw.pid_file.clone(),
            upgrade_sock: gw.upgrade_sock.clone(),
            state_dir: gw.state_dir.clone(),
            audit_log: gw.audit_log.clone(),
            grace: gw.pingora.grace_period,
            handover,
            lifecycle,
            thread: Mutex::new(None),
        })
    }

    /// `upgrade:` as gateway.yaml says now (the file the new binary was checked against), or
    /// as this process started with when the file cannot be read.
    fn settings_now(&self) -> UpgradeSettings {
        match self.file.as_deref().map(|f| Gateway::load(Some(f))) {
            Some(Ok(gw)) => gw.upgrade,
            Some(Err(e)) => {
                warn!("upgrade: gateway.yaml unreadable ({e}); watching with the settings this process started with");
                self.settings
            }
            None => self.settings,
        }
    }

    /// On SIGQUIT, before the sockets move: holds them and starts the watch. Returns how long
    /// it watches (`None`: no watch, `upgrade.watch_ms: 0`).
    pub fn arm(self: &Arc<Self>) -> Option<Duration> {
        let settings = self.settings_now();
        if settings.watch.is_zero() {
            return None;
        }
        let sockets = HeldSockets::take();
        info!(
            "upgrade: watching the new process for {:?}, holding {}",
            settings.watch,
            sockets.keys().join(", ")
        );
        // SAFETY: the handlers only store to an atomic (async-signal-safe). Pingora listens for
        // signals no more once the upgrade started.
        unsafe {
            libc::signal(
                libc::SIGTERM,
                stop_requested as *const () as libc::sighandler_t,
            );
            libc::signal(
                libc::SIGINT,
                stop_requested as *const () as libc::sighandler_t,
            );
        }
        let me = self.clone();
        let since = (Instant::now(), crate::stamp::now_rfc3339());
        let thread = std::thread::Builder::new()
            .name("upgrade watch".into())
            .spawn(move || me.run(settings, sockets, since));
        match thread {
            Ok(t) => *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(t),
            Err(e) => {
                error!("upgrade: cannot start the watch: {e}");
                return None;
            }
        }
        let me = self.clone();
        self.lifecycle.on_exit(Box::new(move || me.wait()));
        Some(settings.watch)
    }

    /// Until the watch (and a revert) is over: the process must not exit before.
    fn wait(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// The watch; `since`: the handover, as an instant and as the time recorded.
    fn run(&self, settings: UpgradeSettings, mut sockets: HeldSockets, since: (Instant, String)) {
        let (since, at) = since;
        let mut watch = Watch::new(settings);
        let mut claimed = false;
        // The new process's counters, scraped every second: what a revert hands on of them.
        let mut counted: Option<Counters> = None;
        for round in 1u64.. {
            std::thread::sleep(PROBE_EVERY);
            if round % 5 == 0 && watch.was_ready() {
                counted = self.scrape_new().or(counted);
            }
            if STOP.load(Ordering::SeqCst) {
                self.pass_stop_on(&mut watch, since);
                return;
            }
            if let Some(pid) = self.pid_in_file().filter(|p| *p != std::process::id()) {
                watch.named(pid);
            }
            let new_alive = watch.new_pid.map(alive);
            match watch.observe(since.elapsed(), new_alive, self.probe()) {
                watch::Verdict::Watching => {
                    if let (false, true, Some(pid)) = (claimed, watch.was_ready(), watch.new_pid) {
                        claimed = self.forget_unclaimed(&mut sockets, pid);
                    }
                }
                watch::Verdict::Keep => {
                    self.record(&watch, since, Outcome::Kept, watch.new_pid, None);
                    info!(
                        "upgrade: new process {:?} passed the watch; kept",
                        watch.new_pid
                    );
                    return;
                }
                watch::Verdict::Revert(reason) => {
                    self.handover.note(HandoverRecord {
                        at,
                        kind: HandoverKind::Upgrade,
                        from_pid: std::process::id(),
                        to_pid: watch.new_pid.unwrap_or_default(),
                        reason: None,
                    });
                    if matches!(
                        reason,
                        Reason::ErrorRate { .. } | Reason::StoppedAnswering { .. }
                    ) {
                        counted = self.scrape_new().or(counted);
                    }
                    self.revert(&watch, &reason, &sockets, since, counted.as_ref());
                    return;
                }
            }
        }
    }

    /// The new process's counters, from its `/metrics` (this process answers 503 there since
    /// it handed over, so a 200 is the new one's).
    fn scrape_new(&self) -> Option<Counters> {
        let token = self.token.as_deref();
        match client::request_within(
            &self.admin.into(),
            "GET",
            "/metrics",
            token,
            None,
            PROBE_LIMITS,
        ) {
            Ok((200, text)) => Some(counters::snapshot(&text)),
            _ => None,
        }
    }

    /// Once the new process is known: the sockets it did not take are closed now.
    fn forget_unclaimed(&self, sockets: &mut HeldSockets, pid: u32) -> bool {
        if !alive(pid) {
            return false;
        }
        for key in sockets.drop_unclaimed(pid) {
            info!("upgrade: {key} is not listened on by the new process; closed");
        }
        true
    }

    fn pid_in_file(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// One `/readyz` of the new process: the admin socket is shared with this process while
    /// Pingora keeps it accepting (5 s after the handover), so an answer of its own is asked
    /// again, a few times.
    fn probe(&self) -> Probe {
        let mut probe = self.probe_once();
        for _ in 0..4 {
            if probe != Probe::ByOld {
                break;
            }
            probe = self.probe_once();
        }
        probe
    }

    /// One `/readyz` of the admin address.
    fn probe_once(&self) -> Probe {
        let answer = client::request_within(
            &self.admin.into(),
            "GET",
            "/readyz",
            None,
            None,
            PROBE_LIMITS,
        );
        let (code, body) = match answer {
            Ok(a) => a,
            Err(e) => return Probe::Unanswered(e),
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let Some(pid) = v["pid"].as_u64().and_then(|p| u32::try_from(p).ok()) else {
            return Probe::Unanswered(format!("HTTP {code} without a pid"));
        };
        if pid == std::process::id() {
            return Probe::ByOld;
        }
        Probe::Answered {
            pid,
            ready: code == 200,
            requests: v["requests"].as_u64().unwrap_or(0),
            failed: v["failed"].as_u64().unwrap_or(0),
        }
    }

    /// SIGTERM during the watch (`systemctl stop`): the new process is told too, and waited
    /// for, so that the service manager sees the main process go last.
    fn pass_stop_on(&self, watch: &mut Watch, since: Instant) {
        info!("upgrade: stop requested during the watch; passing it on to the new process");
        if let Some(pid) = self.pid_in_file().filter(|p| *p != std::process::id()) {
            watch.named(pid);
        }
        if let Some(pid) = watch.new_pid.filter(|p| alive(*p)) {
            signal(pid, libc::SIGTERM);
            self.wait_gone(pid);
        }
        self.record(watch, since, Outcome::Stopped, watch.new_pid, None);
    }

    /// Waits for `pid` to exit for its grace period and a little more; then SIGKILL.
    fn wait_gone(&self, pid: u32) {
        let until = Instant::now() + self.grace + Duration::from_secs(5);
        while alive(pid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            warn!("upgrade: process {pid} still runs after its grace period; SIGKILL");
            signal(pid, libc::SIGKILL);
        }
    }

    fn record(
        &self,
        watch: &Watch,
        since: Instant,
        result: Outcome,
        serving: Option<u32>,
        reason: Option<String>,
    ) {
        let v = Verdict {
            at: crate::stamp::now_rfc3339(),
            event: verdict::EVENT.into(),
            result,
            old_pid: std::process::id(),
            new_pid: watch.new_pid,
            serving_pid: serving,
            reason,
            watched_ms: since.elapsed().as_millis() as u64,
            requests: watch.seen.0,
            failed: watch.seen.1,
        };
        if let Err(e) = verdict::record(&self.audit_log, &v) {
            error!("upgrade: verdict not recorded: {e}");
        }
    }

    /// The new process failed: stop it, start this binary again on the held sockets.
    fn revert(
        &self,
        watch: &Watch,
        reason: &Reason,
        sockets: &HeldSockets,
        since: Instant,
        failed_counts: Option<&Counters>,
    ) {
        warn!("upgrade: reverting: {reason}");
        let failing = watch.new_pid.filter(|p| alive(*p));
        if let Some(pid) = failing {
            signal(pid, libc::SIGTERM);
        }
        // What the failed process counted (its last scrape, less what it was handed).
        let extra = match (failed_counts, self.handover.written()) {
            (Some(last), Some(handed)) => counters::delta(last, &handed),
            _ => Counters::default(),
        };
        self.handover.write(Outgoing {
            kind: HandoverKind::Revert,
            reason: Some(reason.to_string()),
            watch: None,
            extra,
        });
        let result = self.start_again(sockets, watch.new_pid);
        match &result {
            Ok(pid) => {
                info!("upgrade: reverted; pid {pid} (this binary) serves");
                self.record(
                    watch,
                    since,
                    Outcome::Reverted,
                    Some(*pid),
                    Some(reason.to_string()),
                );
            }
            Err(e) => {
                error!("upgrade: revert failed: {e}");
                let why = format!("{reason}; the revert failed: {e}");
                self.record(watch, since, Outcome::RevertFailed, None, Some(why));
            }
        }
        if let Some(pid) = failing {
            self.wait_gone(pid);
        }
    }

    /// Starts this binary with `run --upgrade --daemon`, sends it the held sockets, and waits
    /// for its `/readyz`; its pid.
    fn start_again(&self, sockets: &HeldSockets, failed_pid: Option<u32>) -> Result<u32, String> {
        let _ = std::fs::remove_file(&self.upgrade_sock);
        let mut child = self.spawn_self()?;
        let deadline = Instant::now() + REVERT_WITHIN;
        while !is_socket(&self.upgrade_sock) {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the old binary exited ({status}) before taking the sockets; see {}",
                    self.log_path().display()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!(
                    "the old binary did not open {} within {REVERT_WITHIN:?}",
                    self.upgrade_sock.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        sockets.send(&self.upgrade_sock)?;
        // The pre-fork parent exits once the daemon is forked.
        std::thread::spawn(move || child.wait());
        let me = std::process::id();
        loop {
            if let Probe::Answered {
                pid, ready: true, ..
            } = self.probe()
            {
                if Some(pid) != failed_pid && pid != me {
                    return Ok(pid);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("the old binary's new process did not answer /readyz within {REVERT_WITHIN:?}; see {}", self.log_path().display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.state_dir.join("dyegate.log")
    }

    /// `/proc/self/exe run --upgrade --daemon [-c gateway.yaml]`: the file this process runs
    /// (even when replaced on disk since), named as it was started.
    fn spawn_self(&self) -> Result<Child, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("cannot open {}: {e}", self.log_path().display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("/proc/self/exe");
        if let Some(arg0) = std::env::args_os().next() {
            cmd.arg0(arg0);
        }
        cmd.args(["run", "--upgrade", "--daemon"]);
        if let Some(file) = &self.file {
            cmd.arg("-c").arg(file);
        }
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start this binary again: {e}"))
    }
}

fn is_socket(p: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a pid this process watched and checked alive.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}
