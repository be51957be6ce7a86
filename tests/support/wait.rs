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
    poll_until(timeout, &mut cond, |held| *held).await.is_ok()
}

/// Polls `probe` until `cond` holds for what it returns: `Ok` with that value, or `Err` with the
/// last value once `timeout` has passed, for the caller's failure message (the last status, the
/// last scrape...). Like [`wait_until`], the probe runs once more at the deadline.
pub async fn poll_until<T, F, Fut>(
    timeout: Duration,
    mut probe: F,
    mut cond: impl FnMut(&T) -> bool,
) -> Result<T, T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let value = probe().await;
        if cond(&value) {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(value);
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

    #[tokio::test]
    async fn poll_until_gives_the_value_that_held_or_the_last_one() {
        let mut n = 0;
        let held = poll_until(
            Duration::from_secs(5),
            || {
                n += 1;
                std::future::ready(n)
            },
            |v| *v == 3,
        )
        .await;
        assert_eq!(held, Ok(3));
        let mut n = 0;
        let missed = poll_until(
            Duration::from_millis(30),
            || {
                n += 1;
                std::future::ready(n)
            },
            |_| false,
        )
        .await;
        assert!(matches!(missed, Err(last) if last >= 2), "{missed:?}");
    }

    #[test]
    fn returns_false_after_the_deadline() {
        let start = Instant::now();
        assert!(!wait_until(Duration::from_millis(50), || false));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
