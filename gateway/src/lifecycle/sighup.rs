//! SIGHUP from process start until the reload trigger listens. Its default action kills the
//! process; until the file source's handler is installed (a Pingora background service, after
//! daemonisation), a SIGHUP is remembered here and replayed by that service when it starts.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the early SIGHUP handler; a process-wide flag because a signal handler can reach
/// nothing else (async-signal-safe: one atomic store).
static EARLY_SIGHUP: AtomicBool = AtomicBool::new(false);

extern "C" fn early_sighup(_: libc::c_int) {
    EARLY_SIGHUP.store(true, Ordering::SeqCst);
}

/// Installs a SIGHUP handler that only remembers the signal, for the time between process start
/// and the reload service's own handler (which replays it, see [`take_early_sighup`]).
/// Dispositions survive Pingora's fork when daemonizing.
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
    EARLY_SIGHUP.swap(false, Ordering::SeqCst)
}
