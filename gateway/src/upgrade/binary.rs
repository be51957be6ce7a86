//! The new binary of `dyegate upgrade`. With `--expect-sha256`, the file is opened once and read
//! once: its bytes are hashed while they are copied into a sealed memory file, and what runs
//! (`check`, then the new process) is that copy, executed through its descriptor. Nothing that
//! happens to the file on disk after it was read (a rename over it, an in-place write) can
//! change what runs: there is no window between the check and the execution.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the new process's environment to the descriptor of the private copy it was started
/// from, so the new process closes it (it is inherited: a `#!` script reads its own file
/// through `/proc/self/fd/N`, so the descriptor must stay open across `exec`).
pub const BINARY_FD_ENV: &str = "DYEGATE_UPGRADE_BINARY_FD";

/// The name of the private copies (`/memfd:dyegate-upgrade` in `/proc/PID/exe`).
const MEMFD_NAME: &std::ffi::CStr = c"dyegate-upgrade";

/// A sha256 as `--expect-sha256` takes it: 64 hex digits (either case; `sha256sum` prints
/// lowercase).
pub fn sha256_hex(given: &str) -> Result<[u8; 32], String> {
    let text = given.trim();
    let bytes = text.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!(
            "found {given:?}, expected a sha256 of 64 hex digits (as `sha256sum FILE` prints)"
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
        out[i] = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Ok(out)
}

/// Lowercase hex, as `sha256sum` prints it.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `dyegate upgrade` runs.
pub enum NewBinary {
    /// The file at this path, as it is when it is executed (no `--expect-sha256`).
    Path(PathBuf),
    /// A private, sealed copy of the file whose sha256 was checked.
    Verified {
        path: PathBuf,
        copy: OwnedFd,
        sha256: String,
    },
}

impl NewBinary {
    /// The binary as the operator named it.
    pub fn path(&self) -> &Path {
        match self {
            NewBinary::Path(p) | NewBinary::Verified { path: p, .. } => p,
        }
    }

    /// The sha256 that was checked (`None`: not asked for).
    pub fn sha256(&self) -> Option<&str> {
        match self {
            NewBinary::Path(_) => None,
            NewBinary::Verified { sha256, .. } => Some(sha256),
        }
    }

    /// A command that runs this binary: the path itself, or the checked copy through its
    /// descriptor (`argv[0]` is the path either way, so `ps` and the pid checks see it).
    pub fn command(&self) -> Command {
        match self {
            NewBinary::Path(p) => Command::new(p),
            NewBinary::Verified { path, copy, .. } => {
                let fd = copy.as_raw_fd();
                let mut cmd = Command::new(format!("/proc/self/fd/{fd}"));
                cmd.arg0(path).env(BINARY_FD_ENV, fd.to_string());
                // SAFETY: fcntl(2) is async-signal-safe; it runs in the child between fork and
                // exec and touches only the descriptor the child inherited.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                cmd
            }
        }
    }
}

/// Why the binary is not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unreadable(String),
    /// The file's sha256 and the expected one, both in hex.
    Mismatch {
        actual: String,
        expected: String,
    },
}

/// Opens `path` once; with `expected`, copies it into a sealed memory file while hashing it and
/// refuses it when the hashes differ.
pub fn open(path: &Path, expected: Option<[u8; 32]>) -> Result<NewBinary, Refusal> {
    let Some(expected) = expected else {
        return Ok(NewBinary::Path(path.to_path_buf()));
    };
    let unreadable = |e: std::io::Error| Refusal::Unreadable(format!("{}: {e}", path.display()));
    let mut file = File::open(path).map_err(unreadable)?;
    let copy =
        memfd().map_err(|e| Refusal::Unreadable(format!("cannot make a private copy: {e}")))?;
    let mut out = File::from(copy);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| Refusal::Unreadable(format!("cannot make a private copy: {e}")))?;
    }
    let actual = hasher.finalize();
    if actual.as_slice() != expected {
        return Err(Refusal::Mismatch {
            actual: hex(&actual),
            expected: hex(&expected),
        });
    }
    let copy = OwnedFd::from(out);
    seal(&copy).map_err(|e| Refusal::Unreadable(format!("cannot seal the private copy: {e}")))?;
    Ok(NewBinary::Verified {
        path: path.to_path_buf(),
        copy,
        sha256: hex(&actual),
    })
}

/// An anonymous memory file that can be sealed and executed (`MFD_EXEC` where the kernel knows
/// it: from Linux 6.3, `vm.memfd_noexec` may otherwise make it non-executable).
fn memfd() -> std::io::Result<OwnedFd> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a valid C string; the result is checked and owned below.
    let mut fd = unsafe { libc::memfd_create(MEMFD_NAME.as_ptr(), flags | libc::MFD_EXEC) };
    if fd == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above, without the flag older kernels do not know.
        fd = unsafe { libc::memfd_create(MEMFD_NAME.as_ptr(), flags) };
    }
    if fd == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor memfd_create just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// No more writes, growth or shrinking, and no unsealing.
fn seal(fd: &OwnedFd) -> std::io::Result<()> {
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// In a process started from a checked copy: closes the copy's descriptor it inherited (only
/// when it is one of ours) and forgets the variable, so it is not passed on.
pub fn close_inherited_copy() {
    let Some(fd) = std::env::var(BINARY_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    std::env::remove_var(BINARY_FD_ENV);
    let ours = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|t| t.to_string_lossy().starts_with("/memfd:dyegate-upgrade"));
    if ours {
        // SAFETY: the descriptor is the inherited memory file, which nothing else here uses.
        unsafe { libc::close(fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn a_sha256_is_64_hex_digits_in_either_case() {
        let upper = EMPTY.to_ascii_uppercase();
        assert_eq!(sha256_hex(&upper), sha256_hex(EMPTY));
        assert_eq!(hex(&sha256_hex(EMPTY).expect("hex")), EMPTY);
        assert_eq!(
            sha256_hex("abc"),
            Err(
                "found \"abc\", expected a sha256 of 64 hex digits (as `sha256sum FILE` prints)"
                    .into()
            )
        );
        assert!(sha256_hex(&format!("{}g", &EMPTY[..63])).is_err());
    }

    #[test]
    fn a_matching_file_runs_from_its_sealed_copy_and_a_changed_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tool");
        std::fs::write(&path, b"#!/bin/sh\necho copied \"$0\" \"$1\"\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let digest: [u8; 32] = Sha256::digest(std::fs::read(&path).expect("read")).into();

        let bin = open(&path, Some(digest)).expect("the hash matches");
        assert_eq!(bin.sha256(), Some(hex(&digest).as_str()));
        // Changed on disk after the check: what runs is still what was checked.
        std::fs::write(&path, b"#!/bin/sh\necho changed\n").expect("rewrite");
        let out = bin.command().arg("x").output().expect("run the copy");
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("copied /proc/self/fd/"),
            "{out:?}"
        );

        match open(&path, Some(digest)) {
            Err(Refusal::Mismatch { actual, expected }) => {
                assert_eq!(expected, hex(&digest));
                assert_ne!(actual, expected);
            }
            _ => panic!("a changed file must be refused"),
        }
        assert!(matches!(
            open(&dir.path().join("missing"), Some(digest)),
            Err(Refusal::Unreadable(_))
        ));
    }
}
