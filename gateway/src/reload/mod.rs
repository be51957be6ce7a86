//! Live reload: one pipeline for every trigger (file change, SIGHUP, admin API, rollback):
//! read → parse → validate → compile → swap → record. A bad edit never half-applies: the old
//! table keeps serving, the error is logged, shown in status and counted.

mod active;
mod audit;
mod history;
mod pipeline;
mod service;
mod watcher;

pub use active::ActiveTable;
pub use audit::AuditLog;
pub use history::{History, VersionInfo};
pub use pipeline::{LastError, Outcome, ReloadReport, Reloader, Trigger};
pub use service::ReloadService;
pub use watcher::{Fingerprint, RoutesWatcher};

/// Lower-case hex sha256 of a file's bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Now, RFC 3339 with seconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Set by the early SIGHUP handler; a process-wide flag because a signal handler can reach
/// nothing else (async-signal-safe: one atomic store).
static EARLY_SIGHUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn early_sighup(_: libc::c_int) {
    EARLY_SIGHUP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Installs a SIGHUP handler that only remembers the signal, for the time between process start
/// and the reload service's own handler (which replays it, see [`take_early_sighup`]).
pub fn install_early_sighup_handler() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGHUP,
            early_sighup as *const () as libc::sighandler_t,
        );
    }
}

/// Whether a SIGHUP arrived before the reload service listened (and forgets it).
pub fn take_early_sighup() -> bool {
    EARLY_SIGHUP.swap(false, std::sync::atomic::Ordering::SeqCst)
}
