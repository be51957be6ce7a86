//! Polling with a deadline: the only way tests wait for something to become true.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(10);

/// Polls `cond` until it holds or `timeout` has passed; returns whether it held.
///
/// The condition is always checked once more at the deadline, so a slow machine that makes the
/// last sleep overshoot still gets its answer.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(POLL_EVERY.min(deadline - now));
    }
}

/// The async form of [`wait_until`], for conditions that need to await (e.g. an HTTP request).
pub async fn wait_until_async<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_true_as_soon_as_the_condition_holds() {
        let mut calls = 0;
        let held = wait_until(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        });
        assert!(held);
        assert_eq!(calls, 3);
    }

    #[test]
    fn returns_false_after_the_deadline() {
        let start = Instant::now();
        assert!(!wait_until(Duration::from_millis(50), || false));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
