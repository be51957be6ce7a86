//! One upgrade at a time: an exclusive `flock` on `<upgrade_sock>.lock`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Held for the whole `dyegate upgrade`; released on drop (and by the kernel if the upgrading
/// command dies). The file is held only to keep the lock.
pub struct UpgradeLock(#[allow(dead_code)] File);

impl UpgradeLock {
    pub fn acquire(sock: &Path) -> Result<UpgradeLock, String> {
        let path = PathBuf::from(format!("{}.lock", sock.display()));
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open lock {}: {e}", path.display()))?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "an upgrade is already in progress (lock {} is held); nothing was changed",
                path.display()
            ));
        }
        Ok(UpgradeLock(f))
    }
}
