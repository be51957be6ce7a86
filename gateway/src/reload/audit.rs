//! The audit log: one JSON line per attempt to change the routing table, appended and synced to
//! disk before the attempt is answered. A line that cannot be written is an error the caller
//! reports (log, `/status`, metric, and the answer itself), never silent.

use super::version_id::VersionId;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct AuditLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl AuditLog {
    pub fn new(path: &Path) -> AuditLog {
        AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the log can be opened for appending (`dyegate run` refuses to start
    /// otherwise).
    pub fn check_writable(&self) -> Result<(), String> {
        self.open().map(drop).map_err(|e| {
            format!(
                "audit log {}: cannot open for appending: {e}",
                self.path.display()
            )
        })
    }

    fn open(&self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    /// Appends one record and syncs it to disk.
    pub fn append<T: Serialize>(&self, record: &T) -> Result<(), String> {
        let mut line = serde_json::to_vec(record).map_err(|e| format!("cannot encode: {e}"))?;
        line.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // Reopen when the file was moved away (logrotate) or never opened.
        let moved = guard.is_some() && !self.path.exists();
        if guard.is_none() || moved {
            *guard = Some(self.open().map_err(|e| format!("cannot open: {e}"))?);
        }
        let Some(f) = guard.as_mut() else {
            return Err("not open".into());
        };
        let written = f.write_all(&line).and_then(|()| f.sync_data());
        if let Err(e) = written {
            // A partial line must not glue onto the next one.
            let _ = f.write_all(b"\n");
            *guard = None;
            return Err(format!("cannot write: {e}"));
        }
        Ok(())
    }

    /// The highest `version_after` among the last lines of the log (the audit log may sit on
    /// another filesystem than `state_dir`: a version it recorded is never given out again).
    pub fn last_version(&self) -> VersionId {
        const TAIL: u64 = 256 * 1024;
        let Ok(mut f) = File::open(&self.path) else {
            return VersionId::default();
        };
        let len = f.metadata().map_or(0, |m| m.len());
        let mut tail = Vec::new();
        if f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).is_err()
            || f.take(TAIL).read_to_end(&mut tail).is_err()
        {
            return VersionId::default();
        }
        (tail.split(|b| *b == b'\n'))
            .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                serde_json::from_value::<VersionId>(v.get("version_after")?.clone()).ok()
            })
            .max()
            .unwrap_or_default()
    }
}
