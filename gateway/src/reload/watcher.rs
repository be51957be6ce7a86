//! Watching routes.yaml: the directory is watched, not the file's inode, so editor rename-writes,
//! `mv` of a temporary file over it and a Kubernetes ConfigMap `..data` symlink swap are all
//! seen. Whether an event batch concerns the routes file is decided by its [`Fingerprint`].

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tokio::sync::mpsc::UnboundedSender;

/// Identity of the routes file as seen through symlinks: a change of any part means "look again".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    target: Option<PathBuf>,
    inode: u64,
    device: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Fingerprint {
    /// `None` when the file cannot be read right now (e.g. between delete and create).
    pub fn of(path: &Path) -> Option<Fingerprint> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Fingerprint {
            target: std::fs::canonicalize(path).ok(),
            inode: meta.ino(),
            device: meta.dev(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// Keeps the OS watch alive; every event in the directory sends `()` on the channel.
pub struct RoutesWatcher {
    _watcher: RecommendedWatcher,
}

impl RoutesWatcher {
    pub fn new(routes_path: &Path, events: UnboundedSender<()>) -> notify::Result<RoutesWatcher> {
        let dir = routes_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(ev) if ev.kind.is_access() => {}
                Ok(_) => {
                    let _ = events.send(());
                }
                Err(e) => log::warn!("file watch error: {e}"),
            })?;
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(RoutesWatcher { _watcher: watcher })
    }
}
