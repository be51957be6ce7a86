//! How an upgrade's watch ended, as one line of the audit log (`reload.audit_log`): written by
//! the old process when the watch ends, read by `dyegate upgrade` to report it.

use crate::reload::AuditLog;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

/// How the watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The new process passed the watch.
    Kept,
    /// The old binary took the sockets back.
    Reverted,
    /// The revert was needed but did not complete (the reason says what failed).
    RevertFailed,
    /// The old process was told to stop (SIGTERM) during the watch: passed on to the new one.
    Stopped,
}

/// One audit line: `{"event": "upgrade", "result": "reverted", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub at: String,
    pub event: String,
    pub result: Outcome,
    /// The process that watched (the old one).
    pub old_pid: u32,
    /// The process watched (the new one), when it was seen.
    pub new_pid: Option<u32>,
    /// The process serving after the verdict (after a revert: the old binary's new process).
    pub serving_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the new process was watched.
    pub watched_ms: u64,
    /// What it answered during the watch: requests, of which failed.
    pub requests: u64,
    pub failed: u64,
}

pub const EVENT: &str = "upgrade";

/// Appends the verdict to the audit log (fsynced); the error names the file.
pub fn record(audit_log: &Path, verdict: &Verdict) -> Result<(), String> {
    AuditLog::new(audit_log)
        .append(verdict)
        .map_err(|e| format!("audit log {}: {e}", audit_log.display()))
}

/// The verdict of the watch by `old_pid` among the lines written from `offset` on.
pub fn find(audit_log: &Path, offset: u64, old_pid: u32) -> Option<Verdict> {
    let mut f = std::fs::File::open(audit_log).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("\"event\":\"upgrade\""))
        .filter_map(|l| serde_json::from_str::<Verdict>(&l).ok())
        .find(|v| v.event == EVENT && v.old_pid == old_pid)
}

/// The audit log's length now: where to look for a verdict written after this moment.
pub fn end_of(audit_log: &Path) -> u64 {
    std::fs::metadata(audit_log).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_found_by_the_old_pid_after_an_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("audit.log");
        std::fs::write(&log, "{\"version_after\": 3}\n").expect("write");
        let start = end_of(&log);
        let v = |old_pid, result| Verdict {
            at: "now".into(),
            event: EVENT.into(),
            result,
            old_pid,
            new_pid: Some(old_pid + 1),
            serving_pid: Some(old_pid + 2),
            reason: Some("new process exited".into()),
            watched_ms: 2000,
            requests: 10,
            failed: 0,
        };
        record(&log, &v(5, Outcome::Kept)).expect("recorded");
        record(&log, &v(7, Outcome::Reverted)).expect("recorded");
        assert_eq!(find(&log, start, 7), Some(v(7, Outcome::Reverted)));
        assert_eq!(find(&log, start, 5).map(|v| v.result), Some(Outcome::Kept));
        assert_eq!(find(&log, end_of(&log), 7), None);
        assert_eq!(find(&log, start, 6), None);
        let text = std::fs::read_to_string(&log).expect("read");
        assert!(
            text.contains("\"event\":\"upgrade\",\"result\":\"reverted\""),
            "{text}"
        );
    }
}
