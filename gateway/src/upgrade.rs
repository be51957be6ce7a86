//! `dyegate upgrade`: replace the running binary without dropping a connection, using Pingora's
//! socket handover, with the checks Pingora leaves out:
//!
//! 1. the new binary checks the current config first; if it fails, nothing is touched;
//! 2. the new binary is started with `--upgrade --daemon` and must be waiting on the upgrade
//!    socket before the old process is signalled (otherwise the old one would shut down with
//!    nobody to take its sockets);
//! 3. SIGQUIT to the old process: it sends every listening socket (proxy and admin) and drains;
//! 4. success is reported only once the new process answers `/readyz`.

use crate::admin::client;
use crate::config::Gateway;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What `dyegate upgrade` was asked to do.
pub struct UpgradeArgs {
    pub config: PathBuf,
    pub binary: PathBuf,
    /// Also wait for the old process to exit, and report how long it drained.
    pub wait_old: bool,
    pub timeout: Duration,
}

fn step(n: u8, msg: &str) {
    println!("[{n}/5] {msg}");
}

/// Runs the upgrade; `Err` carries the message to print (the old process keeps serving unless
/// the message says otherwise).
pub fn upgrade(args: &UpgradeArgs) -> Result<(), String> {
    let gw = Gateway::load(Some(&args.config)).map_err(|e| format!("{e}"))?;
    let old = running_pid(&gw.pid_file)?;
    // The pid file can name a process that is not this gateway (a stale file whose pid now
    // belongs to another dyegate): only the process serving this config's admin address may be
    // signalled.
    let token = gw.config.admin.token.as_deref();
    confirm_pid(&gw, old, token)?;
    // Checked before the lock, whose file lives next to the socket.
    let sock = &gw.upgrade_sock;
    match sock.parent() {
        Some(dir) if dir.is_dir() => {}
        _ => {
            return Err(format!(
                "upgrade socket directory of {} does not exist; nothing was changed, pid {old} keeps serving",
                sock.display()
            ))
        }
    }
    let _lock = UpgradeLock::acquire(sock)?;
    step(
        1,
        &format!("running dyegate: pid {old} ({})", gw.pid_file.display()),
    );

    // 1. The new binary validates the current files with its own code.
    let out = Command::new(&args.binary)
        .args(["check", "-c"])
        .arg(&args.config)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args.binary.display()))?;
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
            args.binary.display(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
    );

    // 2. Start the new process; it waits for the sockets on the upgrade socket.
    if sock.exists() {
        // A leftover from an earlier upgrade: the new process would unlink it anyway, and we must
        // see the new process create it.
        let _ = std::fs::remove_file(sock);
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
    let mut child = Command::new(&args.binary)
        .args(["run", "--upgrade", "--daemon", "-c"])
        .arg(&args.config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.binary.display()))?;
    step(
        2,
        &format!(
            "started new process {} (log: {})",
            child.id(),
            log_path.display()
        ),
    );

    let deadline = Instant::now() + args.timeout;
    loop {
        if is_socket(sock) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "new process exited ({status}) before opening the upgrade socket {}; pid {old} keeps serving.\n{}",
                sock.display(),
                log_tail(&log_path, log_start)
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "upgrade socket {} missing: the new process did not open it within {:?}; it was stopped, pid {old} keeps serving.\n{}",
                sock.display(),
                args.timeout,
                log_tail(&log_path, log_start)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // 3. Hand over.
    // SAFETY: kill(2) with a pid read from the pid file and checked alive above.
    if unsafe { libc::kill(old as libc::pid_t, libc::SIGQUIT) } != 0 {
        let _ = child.kill();
        return Err(format!(
            "cannot signal pid {old}: {}; new process stopped",
            std::io::Error::last_os_error()
        ));
    }
    let handover = Instant::now();
    step(
        3,
        &format!("SIGQUIT sent to {old}: listening sockets move to the new process"),
    );

    // The pre-fork parent exits once the daemon is forked (after it got the sockets).
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(status)) => {
                return Err(format!(
                    "new process failed after the handover started ({status}); check {}.\n{}",
                    log_path.display(),
                    log_tail(&log_path, log_start)
                ))
            }
            _ if Instant::now() > deadline + args.timeout => {
                return Err("new process did not take the sockets in time".into())
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }

    // 4. Ready: /readyz answered by a process other than the old one.
    let token = gw.config.admin.token.as_deref();
    let ready_deadline = Instant::now() + args.timeout;
    let new_pid = loop {
        if let Ok((200, body)) =
            client::request(&gw.admin_listen.into(), "GET", "/readyz", token, None)
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                if let Some(pid) = v["pid"].as_u64().filter(|p| *p != u64::from(old)) {
                    break pid;
                }
            }
        }
        if Instant::now() > ready_deadline {
            return Err(format!(
                "new process not ready within {:?} after the handover; check {}",
                args.timeout,
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    step(
        4,
        &format!(
            "new process {new_pid} ready after {:?}; old process {old} draining (exits when idle, at most {} s)",
            handover.elapsed(),
            gw.config.pingora.grace_period_seconds
        ),
    );

    if args.wait_old {
        let limit = Duration::from_secs(gw.config.pingora.grace_period_seconds + 20);
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
    } else {
        step(5, "done");
    }
    Ok(())
}

/// Confirms that `pid` is the dyegate serving this configuration's admin address. Right after an
/// earlier upgrade the admin socket is shared with the draining predecessor for Pingora's 5 s
/// close window, so answers from another pid are retried for a little longer than that.
fn confirm_pid(gw: &Gateway, pid: u32, token: Option<&str>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(7);
    let mut seen = Vec::new();
    loop {
        match client::request(&gw.admin_listen.into(), "GET", "/healthz", token, None) {
            Ok((200, body)) => {
                let serving = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["pid"].as_u64());
                if serving == Some(u64::from(pid)) {
                    return Ok(());
                }
                if let Some(p) = serving.filter(|p| !seen.contains(p)) {
                    seen.push(p);
                }
            }
            Ok((status, _)) => {
                return Err(format!(
                    "the admin API on {} answered HTTP {status} to /healthz, so pid {pid} cannot be confirmed as this gateway; nothing was changed",
                    gw.admin_listen
                ))
            }
            Err(e) => {
                return Err(format!(
                    "stale pid file {}: pid {pid} is running but no dyegate of this configuration answers ({e}); nothing was changed",
                    gw.pid_file.display()
                ))
            }
        }
        if Instant::now() > deadline {
            let others: Vec<String> = seen.iter().map(|p| format!("pid {p}")).collect();
            return Err(format!(
                "stale pid file {}: it names pid {pid}, but the dyegate answering on {} is {}; nothing was changed",
                gw.pid_file.display(),
                gw.admin_listen,
                if others.is_empty() { "of unknown pid".to_string() } else { others.join(", ") }
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_socket(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    exists
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(true)
}

/// The pid in the pid file, checked to be a live dyegate process.
fn running_pid(pid_file: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(pid_file).map_err(|e| {
        format!(
            "cannot read pid file {}: {e}; is dyegate running with this gateway.yaml?",
            pid_file.display()
        )
    })?;
    let pid: u32 = text.trim().parse().map_err(|_| {
        format!(
            "pid file {} holds {:?}, not a pid",
            pid_file.display(),
            text.trim()
        )
    })?;
    if !alive(pid) {
        return Err(format!(
            "stale pid file {}: process {pid} is not running; start dyegate with `dyegate run` instead of upgrading",
            pid_file.display()
        ));
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("dyegate") {
        return Err(format!(
            "stale pid file {}: process {pid} is not dyegate",
            pid_file.display()
        ));
    }
    Ok(pid)
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

/// One upgrade at a time: an exclusive `flock` on `<upgrade_sock>.lock`, released on drop (and
/// by the kernel if the upgrading command dies). The file is held only to keep the lock.
struct UpgradeLock(#[allow(dead_code)] File);

impl UpgradeLock {
    fn acquire(sock: &Path) -> Result<UpgradeLock, String> {
        let path = PathBuf::from(format!("{}.lock", sock.display()));
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open lock {}: {e}", path.display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "an upgrade is already in progress (lock {} is held); nothing was changed",
                path.display()
            ));
        }
        Ok(UpgradeLock(f))
    }
}
