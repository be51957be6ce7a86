//! Binary upgrades under test: a gateway whose serving process changes (`dyegate upgrade` starts
//! a daemon and the first process exits), the upgrade command's report, and a poller that proves
//! the admin API answers throughout.
//!
//! [`Upgradable`] owns every process of one gateway dir: on drop it kills whatever the pid file
//! names and every process whose command line mentions the dir, so no daemon outlives its test.

pub mod failing;
pub mod under_load;

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Version;
use http_body_util::BodyExt;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::client::{Req, REQUEST_TIMEOUT};
use crate::gateway::{dyegate_cli_in, CliOutput, Dyegate, GatewayConfig, GATEWAY_FILE};
use crate::procfs;
use crate::wait::wait_until_async;

/// The upgrade daemon's output file (`<state_dir>/dyegate.log`, state_dir = `./state`).
pub const UPGRADE_LOG: &str = "state/dyegate.log";
/// `pingora.pid_file` of the suite's gateway.yaml.
pub const PID_FILE: &str = "dyegate.pid";
/// `pingora.upgrade_sock` of the suite's gateway.yaml.
pub const UPGRADE_SOCK: &str = "dyegate-upgrade.sock";

/// Longest a `dyegate upgrade` may run: its own step timeout (20 s) plus `--wait-old` on a grace
/// period of a few seconds plus Pingora's fixed 5 s before shutdown.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running gateway that may be upgraded: the first process is the test's child, later ones are
/// daemons started by `dyegate upgrade`.
pub struct Upgradable {
    // Dropped after `Drop::drop` has killed the daemons, so the dir outlives every process.
    gw: Dyegate,
}

impl Upgradable {
    /// Starts `dyegate run` on `config` and waits until the pid file names the serving process.
    pub async fn start(config: GatewayConfig) -> Self {
        let up = Self { gw: config.start() };
        let child = up.gw.pid();
        let named = wait_until_async(Duration::from_secs(10), || async {
            up.serving_pid() == Some(child)
        })
        .await;
        assert!(
            named,
            "the pid file never named the gateway (pid {child}); it holds {:?}\n{}",
            up.serving_pid(),
            up.logs()
        );
        up
    }

    /// The first process (the test's child) and the config dir.
    pub fn gateway(&self) -> &Dyegate {
        &self.gw
    }

    pub fn config(&self) -> &GatewayConfig {
        self.gw.config()
    }

    pub fn addr(&self) -> SocketAddr {
        self.gw.addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.gw.admin_addr()
    }

    /// The pid the pid file names now.
    pub fn serving_pid(&self) -> Option<u32> {
        procfs::read_pid_file(&self.config().path(PID_FILE))
    }

    /// Every live process started on this dir (the first gateway, daemons, `--upgrade` starts).
    pub fn processes(&self) -> Vec<u32> {
        procfs::pids_with_cmdline_containing(&self.config().dir().display().to_string())
    }

    /// `dyegate upgrade ARGS... -c <dir>/gateway.yaml`, run in the dir, off the async runtime.
    pub async fn upgrade(&self, args: &[&str]) -> UpgradeRun {
        let dir = self.config().dir().to_path_buf();
        let mut all: Vec<OsString> = vec!["upgrade".into()];
        all.extend(args.iter().map(OsString::from));
        all.push("-c".into());
        all.push(dir.join(GATEWAY_FILE).into_os_string());
        let started = Instant::now();
        let output =
            tokio::task::spawn_blocking(move || dyegate_cli_in(&dir, all, UPGRADE_TIMEOUT))
                .await
                .expect("the upgrade command's thread");
        UpgradeRun::parse(output, started.elapsed())
    }

    /// `dyegate upgrade --wait-old`, expected to succeed; panics with its output and the logs
    /// otherwise.
    pub async fn upgrade_ok(&self) -> UpgradeRun {
        let run = self.upgrade(&["--wait-old"]).await;
        assert!(
            run.output.code == Some(0) && run.old_exit_after.is_some(),
            "dyegate upgrade --wait-old failed:\n{}\n{}",
            run.output,
            self.logs()
        );
        run
    }

    /// `GET /status` on the admin API (whichever process holds the admin listener).
    pub async fn status(&self) -> Value {
        match get_once(self.admin_addr(), "/status").await {
            Ok((200, json)) => json,
            other => panic!("GET /status: {other:?}\n{}", self.logs()),
        }
    }

    /// The first gateway's output and the upgrade daemons' log, for assertion messages.
    pub fn logs(&self) -> String {
        let upgrade_log =
            std::fs::read_to_string(self.config().path(UPGRADE_LOG)).unwrap_or_default();
        format!(
            "{}--- {UPGRADE_LOG} (daemons) ---\n{upgrade_log}",
            self.gw.logs()
        )
    }
}

impl Drop for Upgradable {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let upgrade_log =
                std::fs::read_to_string(self.config().path(UPGRADE_LOG)).unwrap_or_default();
            eprintln!("--- {UPGRADE_LOG} (daemons) ---\n{upgrade_log}");
        }
        // Only processes whose command line names this dir: a pid from the pid file alone may
        // have been reused by someone else's process since.
        let pids = self.processes();
        for pid in pids {
            if pid != self.gw.pid() {
                let _ = procfs::signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// What one `dyegate upgrade` printed, with the figures it reports.
#[derive(Debug, Clone)]
pub struct UpgradeRun {
    pub output: CliOutput,
    /// How long the command ran.
    pub took: Duration,
    /// `[1/6] running dyegate: pid N`.
    pub old_pid: Option<u32>,
    /// `[4/6] new process N ready after D`.
    pub new_pid: Option<u32>,
    pub ready_after: Option<Duration>,
    /// `[5/6] kept: ...`, `[5/6] reverted: ...`: the watch's verdict, as printed (after `[5/6] `).
    pub verdict: Option<String>,
    /// `[5/6] reverted: ...; pid N (the old binary) serves again`.
    pub reverted_to: Option<u32>,
    /// `[6/6] old process N exited D after the handover` (with `--wait-old`).
    pub old_exit_after: Option<Duration>,
}

impl UpgradeRun {
    fn parse(output: CliOutput, took: Duration) -> Self {
        let mut run = Self {
            output,
            took,
            old_pid: None,
            new_pid: None,
            ready_after: None,
            verdict: None,
            reverted_to: None,
            old_exit_after: None,
        };
        for line in run.output.stdout.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["[1/6]", "running", "dyegate:", "pid", pid, ..] => run.old_pid = pid.parse().ok(),
                ["[4/6]", "new", "process", pid, "ready", "after", took, ..] => {
                    run.new_pid = pid.parse().ok();
                    run.ready_after = parse_debug_duration(took.trim_end_matches(';'));
                }
                // The watch's verdict came before this command saw the new process ready.
                ["[4/6]", "new", "process", pid, "watched", ..] => run.new_pid = pid.parse().ok(),
                ["[5/6]", ..] => {
                    let text = line.trim_start_matches("[5/6] ");
                    run.verdict = Some(text.to_string());
                    run.reverted_to = text
                        .strip_prefix("reverted: ")
                        .and_then(|t| t.rsplit_once("; pid "))
                        .and_then(|(_, p)| p.split_whitespace().next()?.parse().ok());
                }
                ["[6/6]", "old", "process", _, "exited", took, "after", ..] => {
                    run.old_exit_after = parse_debug_duration(took);
                }
                _ => {}
            }
        }
        run
    }
}

impl fmt::Display for UpgradeRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {:?} -> {:?}: ready after {:.3?}, old exited {:.3?} after the handover (command took {:.3?})",
            self.old_pid, self.new_pid, self.ready_after, self.old_exit_after, self.took
        )
    }
}

/// Reads a `Duration` printed with `{:?}` (`5.313869138s`, `912.5ms`, `30µs`, `7ns`).
pub fn parse_debug_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" | "us" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Polls `pid` until it is gone (exited, or a zombie); returns whether it went within `timeout`.
pub async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    wait_until_async(timeout, || async { !procfs::alive(pid) }).await
}

/// One `GET /status` answer seen by the [`StatusPoller`].
#[derive(Debug, Clone)]
pub struct StatusSeen {
    pub at: Duration,
    pub pid: Option<u64>,
    pub version: Option<u64>,
    pub draining: Option<bool>,
}

/// The poller's findings.
#[derive(Debug, Clone, Default)]
pub struct StatusLog {
    pub answered: Vec<StatusSeen>,
    /// `(time since start, what went wrong)` for every poll without a 200.
    pub failures: Vec<(Duration, String)>,
    /// The longest time between two answered polls.
    pub longest_gap: Duration,
}

impl StatusLog {
    /// The pids that answered, in order of first appearance.
    pub fn pids(&self) -> Vec<u64> {
        let mut pids = Vec::new();
        for pid in self.answered.iter().filter_map(|s| s.pid) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// The versions that answered, deduplicated in order.
    pub fn versions(&self) -> Vec<u64> {
        let mut versions: Vec<u64> = self.answered.iter().filter_map(|s| s.version).collect();
        versions.dedup();
        versions
    }
}

/// `GET /status` on a new connection every 20 ms until stopped, recording who answered.
pub struct StatusPoller {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<StatusLog>>,
    task: JoinHandle<()>,
}

const STATUS_EVERY: Duration = Duration::from_millis(20);

impl StatusPoller {
    pub fn start(admin: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(StatusLog::default()));
        let task = {
            let (stop, log) = (stop.clone(), log.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let mut last_answer = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let result = get_once(admin, "/status").await;
                    let at = started.elapsed();
                    {
                        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                        match result {
                            Ok((200, json)) => {
                                log.longest_gap = log.longest_gap.max(last_answer.elapsed());
                                last_answer = Instant::now();
                                log.answered.push(StatusSeen {
                                    at,
                                    pid: json["pid"].as_u64(),
                                    version: json["version"].as_u64(),
                                    draining: json["draining"].as_bool(),
                                });
                            }
                            Ok((status, json)) => {
                                log.failures.push((at, format!("{status}: {json}")))
                            }
                            Err(e) => log.failures.push((at, e)),
                        }
                    }
                    // time is tested: `/status` every STATUS_EVERY through the upgrade: the longest gap between answers is the figure under test.
                    tokio::time::sleep(STATUS_EVERY).await;
                }
            })
        };
        Self { stop, log, task }
    }

    /// Waits for the poll in progress and returns everything seen.
    pub async fn stop(self) -> StatusLog {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the status poller task");
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.clone()
    }
}

/// `GET path` on a new HTTP/1.1 connection; the status and the body as JSON (`Null` when it is
/// not JSON), or what went wrong.
pub async fn get_once(addr: SocketAddr, path: &str) -> Result<(u16, Value), String> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        let response = sender
            .send_request(Req::get(path).into_http(addr, Version::HTTP_11))
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")))
}

/// The suite's gateway config with `pingora.grace_period_seconds` set to `seconds` (the suite's
/// default of 1 s would hide whether an old process waits for its requests in flight).
pub fn with_grace(config: GatewayConfig, seconds: u64) -> GatewayConfig {
    let text = std::fs::read_to_string(config.gateway_file()).expect("reading gateway.yaml");
    let edited = text.replacen(
        "grace_period_seconds: 1 ",
        &format!("grace_period_seconds: {seconds} "),
        1,
    );
    assert_ne!(
        text, edited,
        "no grace period to set in gateway.yaml:\n{text}"
    );
    config.write(GATEWAY_FILE, &edited);
    config
}

/// Writes `script` as an executable file `<dir>/<name>` (e.g. a fake new binary).
pub fn write_executable(config: &GatewayConfig, name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = config.write(name, script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod +x {}: {e}", path.display()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debug_durations() {
        assert_eq!(
            parse_debug_duration("5.313869138s"),
            Some(Duration::from_nanos(5_313_869_138))
        );
        assert_eq!(
            parse_debug_duration("912.5ms"),
            Some(Duration::from_micros(912_500))
        );
        assert_eq!(
            parse_debug_duration("30µs"),
            Some(Duration::from_micros(30))
        );
        assert_eq!(parse_debug_duration("soon"), None);
    }

    #[test]
    fn takes_the_new_pid_from_a_verdict_that_came_before_readiness() {
        let output = CliOutput {
            code: Some(1),
            timed_out: false,
            stdout: "[1/6] running dyegate: pid 10301 (/tmp/up1/dyegate.pid)\n\
                     [4/6] new process 10360 watched for 1700 ms: the watch ended before its readiness was seen here\n\
                     [5/6] reverted: new process 10360 failed 130 of 130 requests (100.0% > 10.0%) within 1.7s after the handover; pid 10423 (the old binary) serves again\n"
                .into(),
            stderr: String::new(),
        };
        let run = UpgradeRun::parse(output, Duration::from_secs(3));
        assert_eq!(run.new_pid, Some(10360));
        assert_eq!(run.ready_after, None);
        assert_eq!(run.reverted_to, Some(10423));
    }

    #[test]
    fn reads_the_figures_of_an_upgrade_report() {
        let output = CliOutput {
            code: Some(0),
            timed_out: false,
            stdout: "[1/6] running dyegate: pid 28714 (/tmp/up1/dyegate.pid)\n\
                     [1/6] /bin/dyegate check: OK: 1 routes, 1 upstreams\n\
                     [2/6] started new process 29708 (log: /tmp/up1/state/dyegate.log)\n\
                     [3/6] SIGQUIT sent to 28714: listening sockets move to the new process\n\
                     [4/6] new process 29832 ready after 1.023120106s; old process 28714 watches it for 3s (upgrade.watch_ms), then drains\n\
                     [5/6] reverted: new process 29832 exited 2.0s after the handover; pid 30001 (the old binary) serves again\n\
                     [6/6] old process 28714 exited 5.313869138s after the handover\n"
                .into(),
            stderr: String::new(),
        };
        let run = UpgradeRun::parse(output, Duration::from_secs(6));
        assert_eq!(run.old_pid, Some(28714));
        assert_eq!(run.new_pid, Some(29832));
        assert_eq!(run.ready_after, Some(Duration::from_nanos(1_023_120_106)));
        assert_eq!(
            run.old_exit_after,
            Some(Duration::from_nanos(5_313_869_138))
        );
        assert_eq!(run.reverted_to, Some(30001));
        assert!(run
            .verdict
            .as_deref()
            .is_some_and(|v| v.starts_with("reverted: new process 29832 exited")));
    }
}
