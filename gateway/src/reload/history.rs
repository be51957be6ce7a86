//! Kept versions of the routing table: number, sha256, time, trigger and source text, in memory
//! and in `state_dir` so that history and version numbers survive restarts and upgrades.
//!
//! Layout: `state_dir/history.json` (the index, newest last) and `state_dir/versions/N.yaml`
//! (source text). Both are written to a temporary file and renamed, so a crash never leaves a
//! torn index; a failed write removes its temporary file and is reported, never silent.
//!
//! Version numbers are never reused: the next one is above every number this process gave out
//! and every number found on disk (the index, the `versions/` files, and what the caller saw in
//! the audit log), even when the index could not be written. A local change on a gateway that
//! follows etcd takes no number of its own: it is the fleet version it was made on plus a local
//! sequence ([`VersionId`], `versions/41.1.yaml`), never reused either. The fleet's version itself
//! can be kept twice (applied again after a local change): the same revision, the same text.

use super::trigger::Trigger;
use super::version_id::VersionId;
use crate::config::model::RoutesConfig;
use crate::config::Overrides;
use crate::routing::RouteTable;
use crate::telemetry::labels::StateWrite;
use log::warn;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One applied version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: u64,
    /// A local change on a gateway that follows etcd: its sequence under `version` (absent: 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub local: u32,
    pub sha256: String,
    pub loaded_at: String,
    /// What applied it (for a rollback: with the version it restored, `rollback_to`).
    #[serde(flatten)]
    pub trigger: Trigger,
    /// For a rollback: the version that was running before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_from: Option<VersionId>,
    /// The weights the running rollouts set over the text (route → split weights); `sha256`
    /// covers both (see [`Overrides::sha256_with`]).
    #[serde(default, skip_serializing_if = "Overrides::is_empty")]
    pub overrides: Overrides,
    /// Who asked for it: the admin identity and the client's address (absent for the file,
    /// SIGHUP, startup, etcd and the rollout's own steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl VersionInfo {
    pub fn id(&self) -> VersionId {
        VersionId::local(self.version, self.local)
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Index {
    versions: Vec<VersionInfo>,
}

/// A kept version: its record, source text and (when this process compiled it) its table and
/// its decoded text, so that applying it again reads nothing.
pub struct Kept {
    pub info: VersionInfo,
    pub text: Arc<str>,
    pub table: Option<Compiled>,
}

/// What this process made of a kept version's text.
#[derive(Clone)]
pub struct Compiled {
    pub table: Arc<RouteTable>,
    /// The text decoded (as written, without the overrides).
    pub model: Arc<RoutesConfig>,
}

#[cfg(test)]
impl From<Arc<RouteTable>> for Compiled {
    fn from(table: Arc<RouteTable>) -> Self {
        Compiled {
            table,
            model: Default::default(),
        }
    }
}

/// How many versions are kept, by count and by bytes of source text (a version's compiled
/// table and model take several times its text in memory).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub count: usize,
    pub bytes: usize,
}

pub struct History {
    dir: PathBuf,
    limits: Limits,
    kept: Vec<Kept>,
    /// The highest version number given out or seen on disk.
    high_water: u64,
    /// The highest local sequence given out or seen on disk, by fleet version.
    locals: std::collections::HashMap<u64, u32>,
}

/// A write of state that failed: which (`history`, `version`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    pub what: StateWrite,
    pub error: String,
}

/// The writes that record a pushed version, done after the in-memory push (outside the lock
/// readers take; attempts are serialised by the commit lock).
pub struct Persist {
    dir: PathBuf,
    version: VersionId,
    text: Arc<str>,
    index: Vec<u8>,
    dropped: Vec<VersionId>,
}

impl History {
    /// Loads the kept versions from `state_dir`; a missing or unreadable state starts empty.
    /// Temporary files left by a process that died mid-write are removed.
    pub fn load(dir: &Path, limits: Limits) -> History {
        let mut h = History {
            dir: dir.to_path_buf(),
            limits: Limits {
                count: limits.count.max(1),
                bytes: limits.bytes,
            },
            kept: Vec::new(),
            high_water: 0,
            locals: Default::default(),
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
            h.note(info.id());
            match std::fs::read_to_string(source_path(dir, info.id())) {
                Ok(text) if info.overrides.sha256_with(text.as_bytes()) == info.sha256 => {
                    h.kept.push(Kept {
                        info,
                        text: text.into(),
                        table: None,
                    })
                }
                _ => warn!("state: version {} has no intact source; dropped", info.id()),
            }
        }
        for id in scan_versions_dir(dir) {
            h.note(id);
        }
        h
    }

    /// Raises the floors of numbers and local sequences to `id`.
    fn note(&mut self, id: VersionId) {
        self.high_water = self.high_water.max(id.version);
        let local = self.locals.entry(id.version).or_default();
        *local = (*local).max(id.local);
    }

    pub fn latest(&self) -> Option<&Kept> {
        self.kept.last()
    }

    /// The kept version named `id` (the newest, when the fleet's version was applied twice).
    pub fn get(&self, id: VersionId) -> Option<&Kept> {
        self.kept.iter().rev().find(|k| k.info.id() == id)
    }

    pub fn list(&self) -> Vec<VersionInfo> {
        self.kept.iter().map(|k| k.info.clone()).collect()
    }

    /// The number the next version gets (monotonic, also across restarts).
    pub fn next_version(&self) -> u64 {
        self.high_water + 1
    }

    /// The name of the next local change made on fleet version `version`.
    pub fn next_local(&self, version: u64) -> VersionId {
        let high = self.locals.get(&version).copied().unwrap_or(0);
        VersionId::local(version, high.saturating_add(1))
    }

    /// Raises the floor of version numbers to `id` (seen elsewhere, e.g. the audit log).
    pub fn seen(&mut self, id: VersionId) {
        self.note(id);
    }

    /// Remembers the table compiled for a kept version (after a restart only the text is known).
    pub fn attach_table(&mut self, id: VersionId, table: Compiled) {
        if let Some(k) = self.kept.iter_mut().rev().find(|k| k.info.id() == id) {
            k.table = Some(table);
        }
    }

    /// Records a new version in memory and drops the oldest beyond the limits (the newest is
    /// always kept); returns the writes that persist it.
    pub fn push(&mut self, info: VersionInfo, text: Arc<str>, table: Compiled) -> Persist {
        let version = info.id();
        self.note(version);
        self.kept.push(Kept {
            info,
            text: text.clone(),
            table: Some(table),
        });
        let mut dropped = Vec::new();
        let mut bytes: usize = self.kept.iter().map(|k| k.text.len()).sum();
        while self.kept.len() > 1
            && (self.kept.len() > self.limits.count || bytes > self.limits.bytes)
        {
            let k = self.kept.remove(0);
            bytes -= k.text.len();
            dropped.push(k.info.id());
        }
        // The fleet's version applied again is still kept under the same name: its file stays.
        dropped.retain(|id| !self.kept.iter().any(|k| k.info.id() == *id));
        let index = Index {
            versions: self.list(),
        };
        Persist {
            dir: self.dir.clone(),
            version,
            text,
            index: serde_json::to_vec_pretty(&index).unwrap_or_default(),
            dropped,
        }
    }
}

impl Persist {
    /// Writes the version's source, then the index; removes dropped versions' sources.
    pub fn write(self) -> Result<(), WriteError> {
        let fail = |what: StateWrite| {
            move |e: std::io::Error| WriteError {
                what,
                error: e.to_string(),
            }
        };
        std::fs::create_dir_all(self.dir.join("versions")).map_err(fail(StateWrite::Version))?;
        write_atomic(&source_path(&self.dir, self.version), self.text.as_bytes())
            .map_err(fail(StateWrite::Version))?;
        write_atomic(&self.dir.join("history.json"), &self.index)
            .map_err(fail(StateWrite::History))?;
        for v in &self.dropped {
            let _ = std::fs::remove_file(source_path(&self.dir, *v));
        }
        Ok(())
    }
}

/// Checks that `dir` can hold state: it exists or can be created, and a file written there
/// reaches the disk. `dyegate run` refuses to start otherwise.
pub fn check_writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".write-check.{}", std::process::id()));
    let result = std::fs::create_dir_all(dir.join("versions"))
        .and_then(|()| write_atomic(&probe, b"dyegate state_dir write check\n"));
    let _ = std::fs::remove_file(&probe);
    result.map_err(|e| format!("state_dir {}: cannot write: {e}", dir.display()))
}

fn source_path(dir: &Path, id: VersionId) -> PathBuf {
    dir.join("versions").join(format!("{id}.yaml"))
}

/// The names of `versions/N.yaml` and `versions/N.K.yaml` (and of temporary files
/// `N.tmp.PID`, `N.K.tmp.PID`, which are removed when their process is gone).
fn scan_versions_dir(dir: &Path) -> Vec<VersionId> {
    let Ok(entries) = std::fs::read_dir(dir.join("versions")) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let (id, pid) = match name.split_once(".tmp.") {
            Some((id, pid)) => (id, Some(pid)),
            None => (name.strip_suffix(".yaml").unwrap_or(name), None),
        };
        if let Ok(id) = id.parse::<VersionId>() {
            ids.push(id);
        }
        if let Some(pid) = pid {
            let gone = pid
                .parse::<u32>()
                .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists());
            if gone {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    ids
}

/// Writes through a temporary file renamed over `path`; the temporary file never outlives a
/// failure.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_data()
    });
    let result = written.and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::sha256_hex;

    fn info(version: u64, text: &str) -> VersionInfo {
        VersionInfo {
            version,
            local: 0,
            sha256: sha256_hex(text.as_bytes()),
            loaded_at: "now".into(),
            trigger: Trigger::File,
            rollback_from: None,
            overrides: Overrides::default(),
            identity: None,
            client: None,
        }
    }

    #[test]
    fn bounded_by_count_and_bytes_keeping_the_newest() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut h = History::load(
            dir.path(),
            Limits {
                count: 3,
                bytes: 10,
            },
        );
        let table = Arc::new(RouteTable::default());
        for (v, text) in [(1, "aaaa"), (2, "bbbb"), (3, "cccc")] {
            assert_eq!(
                h.push(info(v, text), text.into(), table.clone().into())
                    .write(),
                Ok(())
            );
        }
        // 12 bytes > 10: the oldest goes.
        assert_eq!(
            h.list().iter().map(|i| i.version).collect::<Vec<_>>(),
            [2, 3]
        );
        let big = "x".repeat(100);
        assert_eq!(
            h.push(info(4, &big), big.as_str().into(), table.into())
                .write(),
            Ok(())
        );
        assert_eq!(h.list().iter().map(|i| i.version).collect::<Vec<_>>(), [4]);
        assert!(!dir.path().join("versions/2.yaml").exists());
        let again = History::load(
            dir.path(),
            Limits {
                count: 3,
                bytes: 1000,
            },
        );
        assert_eq!(again.next_version(), 5);
    }

    #[test]
    fn numbers_continue_above_what_is_on_disk_and_stale_temp_files_go() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let versions = dir.path().join("versions");
        std::fs::create_dir_all(&versions).unwrap_or_else(|e| panic!("{e}"));
        // A version file whose index entry was never written, and a dead process's temp file.
        std::fs::write(versions.join("7.yaml"), "x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(versions.join("9.tmp.4000000"), "").unwrap_or_else(|e| panic!("{e}"));
        let h = History::load(
            dir.path(),
            Limits {
                count: 20,
                bytes: 1 << 20,
            },
        );
        assert_eq!(h.next_version(), 10);
        assert!(!versions.join("9.tmp.4000000").exists());
    }

    #[test]
    fn a_failed_write_is_reported_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut h = History::load(
            dir.path(),
            Limits {
                count: 20,
                bytes: 1 << 20,
            },
        );
        // history.json is a directory: the index cannot be renamed over it.
        std::fs::create_dir_all(dir.path().join("history.json")).unwrap_or_else(|e| panic!("{e}"));
        let err = h
            .push(
                info(1, "a"),
                "a".into(),
                Arc::new(RouteTable::default()).into(),
            )
            .write()
            .expect_err("must fail");
        assert_eq!(err.what, StateWrite::History);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert_eq!(h.next_version(), 2);
        assert!(check_writable(Path::new("/proc/dyegate-state")).is_err());
        assert_eq!(check_writable(dir.path()), Ok(()));
    }

    #[test]
    fn local_changes_are_named_under_the_fleet_version_and_never_reused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let limits = Limits {
            count: 3,
            bytes: 1 << 20,
        };
        let mut h = History::load(dir.path(), limits);
        let table = Arc::new(RouteTable::default());
        let local = |id: VersionId, text: &str| VersionInfo {
            identity: None,
            client: None,
            local: id.local,
            ..info(id.version, text)
        };
        assert_eq!(
            h.push(info(41, "fleet"), "fleet".into(), table.clone().into())
                .write(),
            Ok(())
        );
        assert_eq!(h.next_local(41), VersionId::local(41, 1));
        let id = h.next_local(41);
        assert_eq!(
            h.push(local(id, "old"), "old".into(), table.clone().into())
                .write(),
            Ok(())
        );
        assert!(dir.path().join("versions/41.1.yaml").exists());
        assert_eq!(h.next_local(41), VersionId::local(41, 2));
        // Local changes take no fleet number.
        assert_eq!(h.next_version(), 42);
        assert_eq!(
            h.get(VersionId::local(41, 1)).map(|k| &*k.text),
            Some("old")
        );
        // The fleet's version applied again: kept twice under one name, its file kept when the
        // older entry goes.
        assert_eq!(
            h.push(info(41, "fleet"), "fleet".into(), table.clone().into())
                .write(),
            Ok(())
        );
        assert_eq!(
            h.push(info(42, "next"), "next".into(), table.clone().into())
                .write(),
            Ok(())
        );
        let ids: Vec<String> = h.list().iter().map(|i| i.id().to_string()).collect();
        assert_eq!(ids, ["41.1", "41", "42"]);
        assert!(dir.path().join("versions/41.yaml").exists());
        assert_eq!(h.get(VersionId::new(41)).map(|k| &*k.text), Some("fleet"));
        // After a restart, and when only the file is left, the sequence goes on.
        let again = History::load(dir.path(), limits);
        assert_eq!(again.next_local(41), VersionId::local(41, 2));
        assert_eq!(again.next_version(), 43);
        std::fs::write(dir.path().join("versions/42.4.yaml"), "x")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("versions/42.6.tmp.4000000"), "")
            .unwrap_or_else(|e| panic!("{e}"));
        let again = History::load(dir.path(), limits);
        assert_eq!(again.next_local(42), VersionId::local(42, 7));
        assert!(!dir.path().join("versions/42.6.tmp.4000000").exists());
    }
}
