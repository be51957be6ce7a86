//! `dyegate upgrade`, step by step (each step a function below):
//!
//! 1. find the running process (pid file, confirmed on the admin address); with
//!    `--expect-sha256`, read the new binary once into a sealed private copy and refuse it when
//!    its sha256 differs; the new binary checks the current config; on any failure nothing is
//!    touched;
//! 2. the new binary is started with `--upgrade --daemon` and must be waiting on the upgrade
//!    socket before the old process is signalled (otherwise the old one would shut down with
//!    nobody to take its sockets);
//! 3. SIGQUIT to the old process: it sends every listening socket (proxy and admin) and drains;
//! 4. success is reported only once the new process answers `/readyz`.

use super::binary::{self, NewBinary, Refusal};
use super::lock::UpgradeLock;
use super::running::{alive, confirm_pid, running_pid};
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
    println!("[{n}/5] {msg}");
}

/// The running gateway, found and confirmed.
struct Running {
    gw: Gateway,
    pid: u32,
}

/// The new process while it starts: the pre-fork parent, and its log.
struct Started {
    child: Child,
    log_path: PathBuf,
    log_start: u64,
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
    let new_pid = wait_ready(&running, args, &started)?;
    step(
        4,
        &format!(
            "new process {new_pid} ready after {:?}; old process {old} draining (exits when idle, at most {} s)",
            handover.elapsed(),
            running.gw.config.pingora.grace_period_seconds
        ),
    );
    if args.wait_old {
        wait_old(&running, handover)
    } else {
        step(5, "done");
        Ok(())
    }
}

/// The running process of this configuration, and the directory the upgrade socket goes in.
fn find_running(args: &UpgradeArgs) -> Result<Running, String> {
    let gw = Gateway::load(Some(&args.config)).map_err(|e| format!("{e}"))?;
    let pid = running_pid(&gw.pid_file)?;
    // The pid file can name a process that is not this gateway (a stale file whose pid now
    // belongs to another dyegate): only the process serving this config's admin address may be
    // signalled.
    confirm_pid(&gw, pid)?;
    // Checked before the lock, whose file lives next to the socket.
    let sock = &gw.upgrade_sock;
    match sock.parent() {
        Some(dir) if dir.is_dir() => Ok(Running { gw, pid }),
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

/// Ready: `/readyz` answered by a process other than the old one; its pid.
fn wait_ready(running: &Running, args: &UpgradeArgs, started: &Started) -> Result<u64, String> {
    let gw = &running.gw;
    let token = gw.config.admin.token.as_deref();
    let deadline = Instant::now() + args.timeout;
    loop {
        if let Ok((200, body)) =
            client::request(&gw.admin_listen.into(), "GET", "/readyz", token, None)
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                if let Some(pid) = v["pid"].as_u64().filter(|p| *p != u64::from(running.pid)) {
                    return Ok(pid);
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

/// `--wait-old`: until the old process has exited.
fn wait_old(running: &Running, handover: Instant) -> Result<(), String> {
    let old = running.pid;
    let limit = Duration::from_secs(running.gw.config.pingora.grace_period_seconds + 20);
    while alive(old) {
        if handover.elapsed() > limit {
            return Err(format!("old process {old} still alive after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    step(
        5,
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
