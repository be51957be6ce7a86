//! The audit log: one JSON line per reload attempt, appended and flushed to disk before the
//! attempt is acknowledged.

use log::warn;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
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

    /// Appends one record and syncs it to disk. Failures are logged, never fatal: a full disk
    /// must not stop routing changes.
    pub fn append<T: Serialize>(&self, record: &T) {
        let mut line = match serde_json::to_vec(record) {
            Ok(l) => l,
            Err(e) => {
                warn!("audit: cannot encode record: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut guard = match self.file.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // Reopen when the file was moved away (logrotate) or never opened.
        let moved = guard.is_some() && !self.path.exists();
        if guard.is_none() || moved {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            *guard = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| warn!("audit: cannot open {}: {e}", self.path.display()))
                .ok();
        }
        if let Some(f) = guard.as_mut() {
            if let Err(e) = f.write_all(&line).and_then(|_| f.sync_data()) {
                warn!("audit: cannot write {}: {e}", self.path.display());
                *guard = None;
            }
        }
    }
}
