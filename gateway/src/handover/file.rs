//! The handover file, `state_dir/handover.json`: written by the old process (mode 0600: it may
//! hold session ticket keys) before its sockets move, taken (read and removed) by the new one
//! after it received them and before it serves.

use super::format::{decode, encode, Final, State};
use log::warn;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The largest handover file read (counters of a 10,000-route table are a few MiB).
const MAX_BYTES: u64 = 256 * 1024 * 1024;

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("handover.json")
}

/// Writes the state in one rename. A stale file is removed first, so a failed write never
/// leaves an older state to be taken for this one.
pub fn write(state_dir: &Path, state: &State) -> Result<(), String> {
    let target = path(state_dir);
    let _ = std::fs::remove_file(&target);
    std::fs::create_dir_all(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let tmp = state_dir.join(format!(".handover.json.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&encode(state))?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &target));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", target.display())
    })
}

/// `state_dir/handover-final-<from_pid>.json`.
fn final_path(state_dir: &Path, from_pid: u32) -> PathBuf {
    state_dir.join(format!("handover-final-{from_pid}.json"))
}

/// Writes what the old process counted after its state (at its exit), for `f.to_pid`.
pub fn write_final(state_dir: &Path, f: &Final) -> Result<(), String> {
    let target = final_path(state_dir, f.from_pid);
    let tmp = state_dir.join(format!(".handover-final.{}", std::process::id()));
    let bytes = serde_json::to_vec(f).unwrap_or_default();
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &target))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", target.display())
        })
}

/// Takes (reads and removes) the final counts `from_pid` left for `to_pid`; `None` when there
/// are none (yet), or they are for another process (left in place).
pub fn take_final(state_dir: &Path, from_pid: u32, to_pid: u32) -> Option<Final> {
    let path = final_path(state_dir, from_pid);
    let f: Final = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    if f.format != super::format::FORMAT || f.to_pid != to_pid {
        return None;
    }
    let _ = std::fs::remove_file(&path);
    Some(f)
}

/// What a new process found.
#[derive(Debug)]
pub enum Taken {
    /// No file: the old process wrote none (an older dyegate, or a failed write).
    Nothing,
    /// A file that cannot be used, and why: start fresh.
    Unusable(String),
    State(Box<State>),
}

/// Reads and removes the file. `alive` says whether the writer still runs (it does during a
/// handover; a file from a dead process is a leftover).
pub fn take(state_dir: &Path, alive: impl Fn(u32) -> bool) -> Taken {
    let target = path(state_dir);
    let bytes = match std::fs::metadata(&target) {
        Err(_) => return Taken::Nothing,
        Ok(m) if m.len() > MAX_BYTES => Err(format!("larger than {MAX_BYTES} bytes")),
        Ok(_) => std::fs::read(&target).map_err(|e| e.to_string()),
    };
    if let Err(e) = std::fs::remove_file(&target) {
        warn!("handover: cannot remove {}: {e}", target.display());
    }
    let state = bytes.and_then(|b| decode(&b));
    match state {
        Err(e) => Taken::Unusable(format!("{}: {e}", target.display())),
        Ok(s) if !alive(s.from_pid) => Taken::Unusable(format!(
            "{}: written by pid {}, which no longer runs (a leftover)",
            target.display(),
            s.from_pid
        )),
        Ok(s) => Taken::State(Box::new(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::{Lineage, FORMAT};
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_private_taken_once_and_leftovers_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = State {
            format: FORMAT,
            from_pid: 7,
            written_at: "now".into(),
            kind: Default::default(),
            reason: None,
            lineage: Lineage::fresh("then".into()),
            watch_ms: None,
            ..State::default()
        };
        write(dir.path(), &state).expect("written");
        let mode = std::fs::metadata(path(dir.path()))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        match take(dir.path(), |pid| pid == 7) {
            Taken::State(s) => assert_eq!(*s, state),
            other => panic!("{other:?}"),
        }
        assert!(matches!(take(dir.path(), |_| true), Taken::Nothing));

        write(dir.path(), &state).expect("written");
        match take(dir.path(), |_| false) {
            Taken::Unusable(why) => assert!(
                why.ends_with("written by pid 7, which no longer runs (a leftover)"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        std::fs::write(path(dir.path()), b"{\"format\": 99}").expect("write");
        match take(dir.path(), |_| true) {
            Taken::Unusable(why) => assert!(
                why.ends_with("format 99, this binary reads format 1"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(!path(dir.path()).exists());
    }

    #[test]
    fn final_counts_are_taken_once_by_the_process_they_are_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = Final {
            format: super::super::format::FORMAT,
            from_pid: 10,
            to_pid: 11,
            counters: Default::default(),
        };
        write_final(dir.path(), &f).expect("written");
        assert_eq!(take_final(dir.path(), 10, 12), None, "not for pid 12");
        assert_eq!(take_final(dir.path(), 10, 11), Some(f));
        assert_eq!(take_final(dir.path(), 10, 11), None, "taken once");
    }
}
