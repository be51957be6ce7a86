//! Kept versions of the routing table: number, sha256, time, trigger and source text, in memory
//! and in `state_dir` so that history and version numbers survive restarts and upgrades.
//!
//! Layout: `state_dir/history.json` (the index, newest last) and `state_dir/versions/N.yaml`
//! (source text). Both are written to a temporary file and renamed, so a crash never leaves a
//! torn index.

use super::trigger::Trigger;
use crate::routing::RouteTable;
use crate::stamp::sha256_hex;
use log::warn;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One applied version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: u64,
    pub sha256: String,
    pub loaded_at: String,
    /// What applied it (for a rollback: with the version it restored, `rollback_to`).
    #[serde(flatten)]
    pub trigger: Trigger,
    /// For a rollback: the version that was running before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_from: Option<u64>,
}

#[derive(Serialize, Deserialize, Default)]
struct Index {
    versions: Vec<VersionInfo>,
}

/// A kept version: its record, source text and (when this process compiled it) its table.
pub struct Kept {
    pub info: VersionInfo,
    pub text: Arc<str>,
    pub table: Option<Arc<RouteTable>>,
}

pub struct History {
    dir: PathBuf,
    limit: usize,
    kept: Vec<Kept>,
}

impl History {
    /// Loads the kept versions from `state_dir`; a missing or unreadable state starts empty.
    pub fn load(dir: &Path, limit: usize) -> History {
        let mut h = History {
            dir: dir.to_path_buf(),
            limit: limit.max(1),
            kept: Vec::new(),
        };
        let index_path = dir.join("history.json");
        let index: Index = match std::fs::read(&index_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                warn!("state: ignoring unreadable {}: {e}", index_path.display());
                Index::default()
            }),
            Err(_) => Index::default(),
        };
        for info in index.versions {
            match std::fs::read_to_string(h.source_path(info.version)) {
                Ok(text) if sha256_hex(text.as_bytes()) == info.sha256 => h.kept.push(Kept {
                    info,
                    text: text.into(),
                    table: None,
                }),
                _ => warn!(
                    "state: version {} has no intact source; dropped",
                    info.version
                ),
            }
        }
        h
    }

    fn source_path(&self, version: u64) -> PathBuf {
        self.dir.join("versions").join(format!("{version}.yaml"))
    }

    pub fn latest(&self) -> Option<&Kept> {
        self.kept.last()
    }

    pub fn get(&self, version: u64) -> Option<&Kept> {
        self.kept.iter().find(|k| k.info.version == version)
    }

    pub fn list(&self) -> Vec<VersionInfo> {
        self.kept.iter().map(|k| k.info.clone()).collect()
    }

    /// The number the next version gets (monotonic, also across restarts).
    pub fn next_version(&self) -> u64 {
        self.kept.last().map_or(1, |k| k.info.version + 1)
    }

    /// Remembers the table compiled for a kept version (after a restart only the text is known).
    pub fn attach_table(&mut self, version: u64, table: Arc<RouteTable>) {
        if let Some(k) = self.kept.iter_mut().find(|k| k.info.version == version) {
            k.table = Some(table);
        }
    }

    /// Records a new version, drops the oldest beyond the limit and persists. Persistence
    /// failures are logged: routing goes on, history is then only in memory.
    pub fn push(&mut self, info: VersionInfo, text: Arc<str>, table: Arc<RouteTable>) {
        let version = info.version;
        self.kept.push(Kept {
            info,
            text,
            table: Some(table),
        });
        let mut dropped = Vec::new();
        while self.kept.len() > self.limit {
            dropped.push(self.kept.remove(0).info.version);
        }
        if let Err(e) = self.persist(version, &dropped) {
            warn!(
                "state: cannot persist version {version} in {}: {e}",
                self.dir.display()
            );
        }
    }

    fn persist(&self, version: u64, dropped: &[u64]) -> std::io::Result<()> {
        std::fs::create_dir_all(self.dir.join("versions"))?;
        if let Some(k) = self.get(version) {
            write_atomic(&self.source_path(version), k.text.as_bytes())?;
        }
        let index = Index {
            versions: self.list(),
        };
        let json = serde_json::to_vec_pretty(&index).map_err(std::io::Error::other)?;
        write_atomic(&self.dir.join("history.json"), &json)?;
        for v in dropped {
            let _ = std::fs::remove_file(self.source_path(*v));
        }
        Ok(())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}
