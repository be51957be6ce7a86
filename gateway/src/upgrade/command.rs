//! `dyegate upgrade`, step by step (each step a function below):
//!
//! 1. find the running process (pid file, confirmed on the admin address, not itself still
//!    under the watch of the process it replaced); with `--expect-sha256`, read the new binary
//!    once into a sealed private copy and refuse it when its sha256 differs; the new binary
//!    checks the current config; on any failure nothing is touched;
//! 2. the new binary is started with `--upgrade --daemon` and must be waiting on the upgrade
//!    socket before the old process is signalled (otherwise the old one would shut down with
//!    nobody to take its sockets);
//! 3. SIGQUIT to the old process: it sends every listening socket (proxy and admin), keeps
//!    duplicates of them, and drains;
//! 4. the new process answers `/readyz`;
//! 5. the old process's watch ends (`upgrade.watch_ms`): its verdict, from the audit log:
//!    `kept`, or `reverted` with the reason (the old binary serves again; exit 1);
//! 6. with `--wait-old`, the old process has exited.

use super::binary::{self, NewBinary, Refusal};
use super::lock::UpgradeLock;
use super::running::{alive, confirm_pid, not_watched, running_pid};
use super::verdict::{self, Outcome, Verdict};
use crate::admin::client;
use crate::config::Gateway;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// What `dyegate upgrade` was asked to do.
pub struct UpgradeArgs {
    pub config: PathBuf,
    pub binary: PathBuf,
    /// `--expect-sha256`: the new binary's sha256; a file with another one is not run.
    pub expect_sha256: Option<[u8; 32]>,
    /// Also wait for the old process to exit, and report how long it drained.
    pub wait_old: bool,
    pub timeout: Duration,
}

fn step(n: u8, msg: &str) {
    println!("[{n}/6] {msg}");
}

/// The running gateway, found and confirmed.
struct Running {
    gw: Gateway,
    pid: u32,
    /// The audit log's length before anything was done: the verdict is written after it.
    audit_from: u64,
    /// Whether the running dyegate watches its successor (a dyegate from before the watch
    /// writes no verdict).
    watches: bool,
}

/// The new process while it starts: the pre-fork parent, and its log.
struct Started {
    child: Child,
    log_path: PathBuf,
    log_start: u64,
}

/// What waiting for the new process's `/readyz` found.
enum Ready {
    Pid(u64),
    /// The watch ended first (the new process failed before it was ever ready).
    Verdict(Verdict),
}

/// Runs the upgrade; `Err` carries the message to print (the old process keeps serving unless
/// the message says otherwise).
pub fn upgrade(args: &UpgradeArgs) -> Result<(), String> {
    let running = find_running(args)?;
    let old = running.pid;
    let bin = open_binary(args, old)?;
    let _lock = UpgradeLock::acquire(&running.gw.upgrade_sock)?;
    step(
        1,
        &format!(
            "running dyegate: pid {old} ({})",
            running.gw.pid_file.display()
        ),
    );
    if let Some(sha) = bin.sha256() {
        step(
            1,
            &format!(
                "{}: sha256 {sha} as expected; running a private copy of it",
                bin.path().display()
            ),
        );
    }
    check_config(&bin, args, old)?;
    let mut started = start_new(&bin, args, &running.gw)?;
    wait_for_upgrade_socket(&mut started, args, &running)?;
    let handover = hand_over(&mut started, old)?;
    wait_taken(&mut started, args)?;
    let watch = match running.watches {
        true => running.gw.upgrade.watch,
        false => Duration::ZERO,
    };
    let verdict = match wait_ready(&running, args, &started)? {
        Ready::Pid(new_pid) => {
            step(
                4,
                &format!(
                    "new process {new_pid} ready after {:?}; old process {old} {}",
                    handover.elapsed(),
                    if watch.is_zero() {
                        format!(
                            "draining (exits when idle, at most {:?})",
                            running.gw.pingora.grace_period
                        )
                    } else {
                        format!("watches it for {watch:?} (upgrade.watch_ms), then drains")
                    }
                ),
            );
            wait_verdict(&running, handover, args)?
        }
        Ready::Verdict(v) => {
            // The watch ended before this command saw `/readyz` answer from the new process
            // (it failed within the first polls): the pid still belongs in the report.
            if let Some(new_pid) = v.new_pid {
                step(
                    4,
                    &format!(
                        "new process {new_pid} watched for {} ms: the watch ended before its readiness was seen here",
                        v.watched_ms
                    ),
                );
            }
            Some(v)
        }
    };
    let kept = report_verdict(verdict.as_ref());
    if args.wait_old {
        wait_old(&running, handover)?;
    } else {
        step(6, "done");
    }
    kept
}

/// The running process of this configuration, and the directory the upgrade socket goes in.
fn find_running(args: &UpgradeArgs) -> Result<Running, String> {
    let gw = Gateway::load(Some(&args.config)).map_err(|e| format!("{e}"))?;
    let pid = running_pid(&gw.pid_file)?;
    // The pid file can name a process that is not this gateway (a stale file whose pid now
    // belongs to another dyegate): only the process serving this config's admin address may be
    // signalled.
    confirm_pid(&gw, pid)?;
    let watches = not_watched(&gw, pid)?;
    let audit_from = verdict::end_of(&gw.audit_log);
    // Checked before the lock, whose file lives next to the socket.
    let sock = &gw.upgrade_sock;
    match sock.parent() {
        Some(dir) if dir.is_dir() => Ok(Running {
            gw,
            pid,
            audit_from,
            watches,
        }),
        _ => Err(format!(
            "upgrade socket directory of {} does not exist; nothing was changed, pid {pid} keeps serving",
            sock.display()
        )),
    }
}

/// The new binary, read once and refused when its sha256 is not the expected one.
fn open_binary(args: &UpgradeArgs, old: u32) -> Result<NewBinary, String> {
    binary::open(&args.binary, args.expect_sha256).map_err(|refusal| match refusal {
        Refusal::Unreadable(e) => {
            format!("cannot read the new binary: {e}; nothing was changed, pid {old} keeps serving")
        }
        Refusal::Mismatch { actual, expected } => format!(
            "{}: sha256 is {actual}, expected {expected} (--expect-sha256); nothing was started or signalled, pid {old} keeps serving",
            args.binary.display()
        ),
    })
}

/// The new binary validates the current files with its own code.
fn check_config(bin: &NewBinary, args: &UpgradeArgs, old: u32) -> Result<(), String> {
    let out = bin
        .command()
        .args(["check", "-c"])
        .arg(&args.config)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.path().display()))?;
    if !out.status.success() {
        return Err(format!(
            "{}{}new binary rejects the current configuration; nothing was changed, pid {old} keeps serving",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    step(
        1,
        &format!(
            "{} check: {}",
            bin.path().display(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
    );
    Ok(())
}

/// Starts the new process; it waits for the sockets on the upgrade socket.
fn start_new(bin: &NewBinary, args: &UpgradeArgs, gw: &Gateway) -> Result<Started, String> {
    if gw.upgrade_sock.exists() {
        // A leftover from an earlier upgrade: the new process would unlink it anyway, and we must
        // see the new process create it.
        let _ = std::fs::remove_file(&gw.upgrade_sock);
    }
    let log_path = gw.state_dir.join("dyegate.log");
    let _ = std::fs::create_dir_all(&gw.state_dir);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let child = bin
        .command()
        .args(["run", "--upgrade", "--daemon", "-c"])
        .arg(&args.config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.path().display()))?;
    step(
        2,
        &format!(
            "started new process {} (log: {})",
            child.id(),
            log_path.display()
        ),
    );
    Ok(Started {
        child,
        log_path,
        log_start,
    })
}

fn wait_for_upgrade_socket(
    started: &mut Started,
    args: &UpgradeArgs,
    running: &Running,
) -> Result<(), String> {
    let (sock, old) = (&running.gw.upgrade_sock, running.pid);
    let deadline = Instant::now() + args.timeout;
    loop {
        if is_socket(sock) {
            return Ok(());
        }
        if let Ok(Some(status)) = started.child.try_wait() {
            return Err(format!(
                "new process exited ({status}) before opening the upgrade socket {}; pid {old} keeps serving.\n{}",
                sock.display(),
                log_tail(&started.log_path, started.log_start)
            ));
        }
        if Instant::now() > deadline {
            let _ = started.child.kill();
            let _ = started.child.wait();
            return Err(format!(
                "upgrade socket {} missing: the new process did not open it within {:?}; it was stopped, pid {old} keeps serving.\n{}",
                sock.display(),
                args.timeout,
                log_tail(&started.log_path, started.log_start)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGQUIT to the old process: its listening sockets move to the new one.
fn hand_over(started: &mut Started, old: u32) -> Result<Instant, String> {
    // SAFETY: kill(2) with a pid read from the pid file and checked alive above.
    if unsafe { libc::kill(old as libc::pid_t, libc::SIGQUIT) } != 0 {
        let _ = started.child.kill();
        return Err(format!(
            "cannot signal pid {old}: {}; new process stopped",
            std::io::Error::last_os_error()
        ));
    }
    step(
        3,
        &format!("SIGQUIT sent to {old}: listening sockets move to the new process"),
    );
    Ok(Instant::now())
}

/// The pre-fork parent exits once the daemon is forked (after it got the sockets).
fn wait_taken(started: &mut Started, args: &UpgradeArgs) -> Result<(), String> {
    let deadline = Instant::now() + 2 * args.timeout;
    loop {
        match started.child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(format!(
                    "new process failed after the handover started ({status}); check {}.\n{}",
                    started.log_path.display(),
                    log_tail(&started.log_path, started.log_start)
                ))
            }
            _ if Instant::now() > deadline => {
                return Err("new process did not take the sockets in time".into())
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Ready: `/readyz` answered by a process other than the old one (its pid), unless the old
/// process's watch ended first.
fn wait_ready(running: &Running, args: &UpgradeArgs, started: &Started) -> Result<Ready, String> {
    let gw = &running.gw;
    let token = gw.own_token();
    let deadline = Instant::now() + args.timeout;
    loop {
        if let Some(v) = verdict::find(&gw.audit_log, running.audit_from, running.pid) {
            return Ok(Ready::Verdict(v));
        }
        if let Ok((200, body)) =
            client::request(&gw.admin_listen.into(), "GET", "/readyz", token, None)
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                if let Some(pid) = v["pid"].as_u64().filter(|p| *p != u64::from(running.pid)) {
                    return Ok(Ready::Pid(pid));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "new process not ready within {:?} after the handover; check {}",
                args.timeout,
                started.log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Until the old process's watch ends: its verdict (`None`: no watch, `upgrade.watch_ms: 0`).
fn wait_verdict(
    running: &Running,
    handover: Instant,
    args: &UpgradeArgs,
) -> Result<Option<Verdict>, String> {
    let (gw, old) = (&running.gw, running.pid);
    if gw.upgrade.watch.is_zero() || !running.watches {
        return Ok(None);
    }
    // The watch, a revert (start, sockets, readiness) and the failing process's grace period.
    let limit = gw.upgrade.watch + args.timeout + gw.pingora.grace_period + Duration::from_secs(30);
    loop {
        if let Some(v) = verdict::find(&gw.audit_log, running.audit_from, old) {
            return Ok(Some(v));
        }
        if !alive(old) {
            // Written just before it exited?
            return verdict::find(&gw.audit_log, running.audit_from, old)
                .map(Some)
                .ok_or_else(|| format!("old process {old} exited without a verdict of its watch; see its log and {}", gw.audit_log.display()));
        }
        if handover.elapsed() > limit {
            return Err(format!(
                "no verdict from old process {old} within {limit:?} after the handover; see {}",
                gw.audit_log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Step 5: the verdict; a revert (or a failed one) is the command's failure.
fn report_verdict(verdict: Option<&Verdict>) -> Result<(), String> {
    let Some(v) = verdict else {
        step(
            5,
            "not watched (upgrade.watch_ms: 0, or the running dyegate predates the watch)",
        );
        return Ok(());
    };
    let new = v.new_pid.map_or_else(|| "?".to_string(), |p| p.to_string());
    let reason = v.reason.as_deref().unwrap_or("no reason given");
    match v.result {
        Outcome::Kept => {
            step(
                5,
                &format!(
                    "kept: new process {new} passed the watch of {} ms ({} requests, {} failed)",
                    v.watched_ms, v.requests, v.failed
                ),
            );
            Ok(())
        }
        Outcome::Reverted => {
            let serving = v.serving_pid.unwrap_or_default();
            let line = format!("reverted: {reason}; pid {serving} (the old binary) serves again");
            step(5, &line);
            Err(line)
        }
        Outcome::RevertFailed => {
            let line = format!("revert failed: {reason}");
            step(5, &line);
            Err(line)
        }
        Outcome::Stopped => {
            let line = format!("stopped during the watch (SIGTERM to old process {}); new process {new} was told to stop too", v.old_pid);
            step(5, &line);
            Err(line)
        }
    }
}

/// `--wait-old`: until the old process has exited.
fn wait_old(running: &Running, handover: Instant) -> Result<(), String> {
    let old = running.pid;
    let limit =
        running.gw.upgrade.watch + running.gw.pingora.grace_period + Duration::from_secs(20);
    while alive(old) {
        if handover.elapsed() > limit {
            return Err(format!("old process {old} still alive after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    step(
        6,
        &format!(
            "old process {old} exited {:?} after the handover",
            handover.elapsed()
        ),
    );
    Ok(())
}

fn is_socket(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

fn log_tail(path: &Path, from: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let _ = f.seek(SeekFrom::Start(from));
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    let start = lines.len().saturating_sub(15);
    lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `dyegate upgrade` as the command line gives it: the config (`None`: none given and no
/// ./gateway.yaml), the binary (`None`: this one).
pub fn cli(
    config: Option<PathBuf>,
    binary: Option<PathBuf>,
    expect_sha256: Option<[u8; 32]>,
    wait_old: bool,
    timeout: Duration,
) -> std::process::ExitCode {
    let Some(config) = config else {
        eprintln!("dyegate upgrade: no gateway.yaml given (-c) or in the working directory");
        return std::process::ExitCode::FAILURE;
    };
    let binary = match binary.map_or_else(std::env::current_exe, Ok) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dyegate upgrade: cannot find this binary: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let args = UpgradeArgs {
        config,
        binary,
        expect_sha256,
        wait_old,
        timeout,
    };
    match upgrade(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dyegate upgrade: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
