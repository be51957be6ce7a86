//! Watching routes.yaml: the directory is watched, not the file's inode, so editor rename-writes,
//! `mv` of a temporary file over it and a Kubernetes ConfigMap `..data` symlink swap are all
//! seen. Events on other entries of the directory (a log file, an editor's swap file) are
//! dropped here, so that they neither start nor prolong the debounce; whether a batch really
//! changed the routes file is then decided by its [`Fingerprint`].

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
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

/// Most symlink hops followed when looking for the entries the routes file depends on (links
/// can form a loop).
const MAX_HOPS: usize = 8;

/// The entries of `dir` whose change can change what `routes_path` reads: the file's own name
/// and, hop by hop through symlinks that point back into `dir`, the first component of each
/// target (`..data` for a ConfigMap mount: `routes.yaml -> ..data/routes.yaml`). Computed again
/// for every event, because a swap changes the chain.
fn entries_read_through(routes_path: &Path, dir: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = routes_path
        .file_name()
        .map(OsString::from)
        .into_iter()
        .collect();
    let mut current = routes_path.to_path_buf();
    for _ in 0..MAX_HOPS {
        let Ok(target) = std::fs::read_link(&current) else {
            break;
        };
        let target = match current.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        };
        let Some(Component::Normal(first)) = target
            .strip_prefix(dir)
            .ok()
            .and_then(|rest| rest.components().next())
        else {
            break;
        };
        names.push(first.to_os_string());
        current = target;
    }
    names
}

/// Whether an event may concern the routes file. An event without paths (the kernel queue
/// overflowed, a rescan is needed) may concern anything. Also used for the certificate files
/// (`crate::tls`), which are watched the same way.
pub fn concerns(ev: &notify::Event, routes_path: &Path, dir: &Path) -> bool {
    if ev.paths.is_empty() {
        return true;
    }
    let names = entries_read_through(routes_path, dir);
    ev.paths
        .iter()
        .filter_map(|p| p.file_name())
        .any(|name| names.iter().any(|n| n == name))
}

/// Keeps the OS watch alive; every event that may concern the routes file sends `()` on the
/// channel.
pub struct RoutesWatcher {
    _watcher: RecommendedWatcher,
}

impl RoutesWatcher {
    pub fn new(routes_path: &Path, events: UnboundedSender<()>) -> notify::Result<RoutesWatcher> {
        let dir = routes_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let watched = dir.clone();
        let routes_path = routes_path.to_path_buf();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(ev) if ev.kind.is_access() => {}
                Ok(ev) if !concerns(&ev, &routes_path, &dir) => {}
                Ok(_) => {
                    let _ = events.send(());
                }
                Err(e) => log::warn!("file watch error: {e}"),
            })?;
        watcher.watch(&watched, RecursiveMode::NonRecursive)?;
        Ok(RoutesWatcher { _watcher: watcher })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty dir under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("dyegate-watcher-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("creating a temp dir");
            TempDir(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn event(paths: &[&Path]) -> notify::Event {
        let mut ev = notify::Event::new(notify::EventKind::Any);
        for p in paths {
            ev = ev.add_path(p.to_path_buf());
        }
        ev
    }

    #[test]
    fn a_neighbour_file_does_not_concern_the_routes_file() {
        let dir = TempDir::new("neighbour");
        let routes = dir.path().join("routes.yaml");
        std::fs::write(&routes, "routes: []\n").expect("write");
        let log = dir.path().join("dyegate.log");
        assert!(!concerns(&event(&[&log]), &routes, dir.path()));
        assert!(concerns(&event(&[&routes]), &routes, dir.path()));
        // A rename of a temp file over it names both ends.
        let tmp = dir.path().join("routes.yaml.tmp");
        assert!(concerns(&event(&[&tmp, &routes]), &routes, dir.path()));
        assert!(concerns(&event(&[]), &routes, dir.path()));
    }

    #[test]
    fn a_configmap_data_link_concerns_the_routes_file() {
        let dir = TempDir::new("configmap");
        let d = dir.path();
        std::fs::create_dir(d.join("..v1")).expect("payload dir");
        std::fs::write(d.join("..v1/routes.yaml"), "routes: []\n").expect("write");
        std::os::unix::fs::symlink("..v1", d.join("..data")).expect("..data");
        std::os::unix::fs::symlink("..data/routes.yaml", d.join("routes.yaml")).expect("link");
        let routes = d.join("routes.yaml");
        assert_eq!(
            entries_read_through(&routes, d),
            vec![OsString::from("routes.yaml"), OsString::from("..data")]
        );
        assert!(concerns(
            &event(&[&d.join("..data_tmp"), &d.join("..data")]),
            &routes,
            d
        ));
        assert!(!concerns(&event(&[&d.join("..data_tmp")]), &routes, d));
    }
}
