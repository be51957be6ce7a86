//! The rollouts' clock: what the controller reads for a step's start, the time spent on a step
//! and the seconds of the gates' window. The gateway runs on the wall clock ([`SystemClock`]);
//! unit tests move a [`ManualClock`] by hand, so that steps, windows and waits are tested
//! without waiting.

/// Time as the controller sees it.
pub trait Clock: Send + Sync {
    /// Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// The current second since the Unix epoch (the windows' slots are seconds).
    fn now_second(&self) -> u64;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        super::state::now_ms()
    }

    fn now_second(&self) -> u64 {
        crate::telemetry::window::now_second()
    }
}

/// A clock that moves only when told to.
#[cfg(test)]
pub struct ManualClock(std::sync::atomic::AtomicU64);

#[cfg(test)]
impl ManualClock {
    /// Stopped at `ms` (Unix milliseconds).
    pub fn at(ms: u64) -> std::sync::Arc<ManualClock> {
        std::sync::Arc::new(ManualClock(ms.into()))
    }

    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn now_second(&self) -> u64 {
        self.now_ms() / 1000
    }
}
