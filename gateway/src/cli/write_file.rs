//! `dyegate rollback --write-file`: the routes file replaced by the rolled-back version's text
//! in one step for every reader (the gateway's watcher, an editor): a temporary file in the same
//! directory with the same permissions and owner, synced, then renamed over the file. A symlink
//! (a Kubernetes ConfigMap's `..data`) is followed: its target is replaced, the link stays.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Replaces the file at `path` with `text`; returns the file written (the symlink's target).
pub fn replace(path: &Path, text: &[u8]) -> Result<PathBuf, String> {
    let shown = path.display();
    let target = fs::canonicalize(path).map_err(|e| format!("cannot find {shown}: {e}"))?;
    let meta = fs::metadata(&target).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let dir = target
        .parent()
        .ok_or_else(|| format!("{shown}: no directory"))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.dyegate-{}.tmp", std::process::id()));
    let written = write_new(&tmp, text, &meta).and_then(|()| {
        fs::rename(&tmp, &target).map_err(|e| format!("cannot rename over {shown}: {e}"))
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself made durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(target)
}

/// The temporary file: `text`, the mode and owner of `like`, synced.
fn write_new(tmp: &Path, text: &[u8], like: &fs::Metadata) -> Result<(), String> {
    let shown = tmp.display();
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| format!("cannot create {shown}: {e}"))?;
    f.write_all(text)
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    f.set_permissions(like.permissions())
        .map_err(|e| format!("cannot set the mode of {shown}: {e}"))?;
    let mine = f.metadata().map_err(|e| format!("{shown}: {e}"))?;
    if (mine.uid(), mine.gid()) != (like.uid(), like.gid()) {
        // Another owner (a file the gateway's user owns, written by root): keep it, or the
        // gateway may no longer read its own routes file.
        std::os::unix::fs::fchown(&f, Some(like.uid()), Some(like.gid())).map_err(|e| {
            format!(
                "cannot give the new file the owner of the routes file (uid {}, gid {}): {e}; \
                 run as that user or as root",
                like.uid(),
                like.gid()
            )
        })?;
    }
    f.sync_all()
        .map_err(|e| format!("cannot sync {shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_is_replaced_with_its_mode_and_no_temporary_file_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let routes = dir.path().join("routes.yaml");
        fs::write(&routes, "old\n").expect("write");
        fs::set_permissions(&routes, fs::Permissions::from_mode(0o640)).expect("chmod");
        let written = replace(&routes, b"new\n").expect("replaced");
        assert_eq!(written, fs::canonicalize(&routes).expect("canonical"));
        assert_eq!(fs::read_to_string(&routes).expect("read"), "new\n");
        let mode = fs::metadata(&routes).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.map(|e| e.file_name()).expect("entry"))
            .collect();
        assert_eq!(names, ["routes.yaml"]);
    }

    #[test]
    fn a_symlink_stays_and_its_target_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("data")).expect("mkdir");
        let real = dir.path().join("data/routes.yaml");
        fs::write(&real, "old\n").expect("write");
        let link = dir.path().join("routes.yaml");
        std::os::unix::fs::symlink("data/routes.yaml", &link).expect("symlink");
        replace(&link, b"new\n").expect("replaced");
        assert!(fs::symlink_metadata(&link)
            .expect("meta")
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&real).expect("read"), "new\n");
        let missing = dir.path().join("nope.yaml");
        assert!(replace(&missing, b"x").is_err_and(|e| e.starts_with("cannot find ")));
    }
}
