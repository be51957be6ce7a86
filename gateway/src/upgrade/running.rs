//! The running gateway an upgrade replaces: its pid from the pid file, confirmed alive, a
//! dyegate, and the one answering this configuration's admin address.

use crate::admin::client;
use crate::config::Gateway;
use std::path::Path;
use std::time::{Duration, Instant};

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    exists
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(true)
}

/// The pid in the pid file, checked to be a live dyegate process.
pub fn running_pid(pid_file: &Path) -> Result<u32, String> {
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

/// Confirms that `pid` is the dyegate serving this configuration's admin address. Right after an
/// earlier upgrade the admin socket is shared with the draining predecessor for Pingora's 5 s
/// close window, so answers from another pid are retried for a little longer than that.
pub fn confirm_pid(gw: &Gateway, pid: u32) -> Result<(), String> {
    let token = gw.own_token();
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

/// Refuses to upgrade a process still watched by the one it replaced (an earlier
/// `dyegate upgrade` that was interrupted): a second handover during the watch would look like
/// a failure to the watching process. `Ok(false)`: the running dyegate predates the watch (its
/// `/status` has no `process`), so no verdict will come.
pub fn not_watched(gw: &Gateway, pid: u32) -> Result<bool, String> {
    let token = gw.own_token();
    let Ok((200, body)) = client::request(&gw.admin_listen.into(), "GET", "/status", token, None)
    else {
        return Ok(true);
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if v.get("process").is_none() {
        return Ok(false);
    }
    let w = &v["process"]["watched"];
    match (w["by_pid"].as_u64(), w["ends_in_ms"].as_u64()) {
        // The watcher already wrote its verdict (its clock started a little before this one's).
        (Some(by), Some(_))
            if super::verdict::find(
                &gw.audit_log,
                super::verdict::end_of(&gw.audit_log).saturating_sub(1 << 20),
                by as u32,
            )
            .is_some() =>
        {
            Ok(true)
        }
        (Some(by), Some(left)) => Err(format!(
            "pid {pid} is still watched by pid {by}, which it replaced (upgrade.watch_ms; {left} ms left); nothing was changed, upgrade again once the watch is over"
        )),
        _ => Ok(true),
    }
}
