//! Giving memory back after a wave of connections has gone. glibc keeps freed memory in its
//! arenas: after 5,000 idle connections were closed the process stayed at their RSS. When the
//! number of open connections has fallen by at least [`MIN_DROP`] and to half its peak since the
//! last trim, `malloc_trim(0)` runs once on a blocking thread: rare (a wave, not each close) and
//! never on the request path.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Connections that must have gone since the peak before a trim.
pub const MIN_DROP: usize = 1000;

/// Tracks the peak of open connections since the last trim.
#[derive(Default)]
pub struct Trim {
    peak: AtomicUsize,
    running: AtomicBool,
}

impl Trim {
    /// A connection opened: `open` are open now.
    pub fn opened(&self, open: usize) {
        self.peak.fetch_max(open, Ordering::Relaxed);
    }

    /// A connection closed: `open` are left. Starts a trim after a wave of closes.
    pub fn closed(self: &Arc<Self>, open: usize) {
        let peak = self.peak.load(Ordering::Relaxed);
        if peak < open + MIN_DROP || open > peak / 2 {
            return;
        }
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.peak.store(open, Ordering::Relaxed);
        let this = self.clone();
        let trim = move || {
            release_free_memory();
            this.running.store(false, Ordering::Release);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(trim)),
            Err(_) => trim(),
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only walks and releases glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wave_of_closes_trims() {
        let t = Arc::new(Trim::default());
        t.opened(1500);
        t.closed(1400);
        assert_eq!(t.peak.load(Ordering::Relaxed), 1500, "100 closes: no trim");
        t.closed(400);
        // Trimmed (synchronously here: no runtime): the peak starts again from what is open.
        assert_eq!(t.peak.load(Ordering::Relaxed), 400);
        assert!(!t.running.load(Ordering::Relaxed));
        t.opened(10);
        t.closed(0);
        assert_eq!(
            t.peak.load(Ordering::Relaxed),
            400,
            "400 gone is not a wave"
        );
    }
}
