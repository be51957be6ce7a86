//! The retry budget: per route, retries at most `budget_percent` of the route's requests over
//! the last 10 s, so that a full outage cannot multiply the load on a struggling group. Kept
//! by route name outside the table, so a reload does not hand a failing route a fresh budget.

use dashmap::DashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The window the budget looks back over, in one-second buckets.
pub const WINDOW_SECS: u64 = 10;
/// Retries a route may always make in a window (when its budget is above 0), so that a quiet
/// route still retries its first failures: 20% of 3 requests is no retry at all. Envoy's retry
/// budget has the same floor (`min_retry_concurrency`, 3).
pub const MIN_RETRIES: u64 = 3;

#[derive(Debug, Default)]
struct Bucket {
    /// The second (on the budgets' clock) this bucket counts; others are stale.
    sec: AtomicU64,
    requests: AtomicU32,
    retries: AtomicU32,
}

/// One route's requests and retries over the window.
#[derive(Debug, Default)]
pub struct RetryBudget {
    buckets: [Bucket; WINDOW_SECS as usize],
}

impl RetryBudget {
    /// The bucket of second `sec`, emptied first if it still holds an older second.
    fn bucket(&self, sec: u64) -> &Bucket {
        let b = &self.buckets[(sec % WINDOW_SECS) as usize];
        let held = b.sec.load(Ordering::Acquire);
        if held != sec
            && b.sec
                .compare_exchange(held, sec, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // Counts that land between the swap and these stores are lost: an approximation
            // of one request at a second's edge, never more retries than allowed.
            b.requests.store(0, Ordering::Release);
            b.retries.store(0, Ordering::Release);
        }
        b
    }

    /// Counts a request of the route.
    pub fn request(&self, sec: u64) {
        self.bucket(sec).requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; `false` when `percent` of the window's requests (at
    /// least [`MIN_RETRIES`]) were retried already.
    pub fn try_retry(&self, percent: u8, sec: u64) -> bool {
        if percent == 0 {
            return false;
        }
        let current = self.bucket(sec);
        let (mut requests, mut retries) = (0u64, 0u64);
        for b in &self.buckets {
            let s = b.sec.load(Ordering::Acquire);
            if s + WINDOW_SECS > sec && s <= sec {
                requests += u64::from(b.requests.load(Ordering::Relaxed));
                retries += u64::from(b.retries.load(Ordering::Relaxed));
            }
        }
        let allowed = (requests * u64::from(percent) / 100).max(MIN_RETRIES);
        if retries >= allowed {
            return false;
        }
        current.retries.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// Every route's budget, by route name.
pub struct RetryBudgets {
    epoch: Instant,
    routes: DashMap<Arc<str>, Arc<RetryBudget>, foldhash::fast::RandomState>,
}

impl Default for RetryBudgets {
    fn default() -> Self {
        RetryBudgets {
            epoch: Instant::now(),
            routes: DashMap::default(),
        }
    }
}

impl RetryBudgets {
    /// Seconds on the budgets' clock (starts at 1, so a bucket at 0 is never current).
    pub fn now_sec(&self) -> u64 {
        self.epoch.elapsed().as_secs() + 1
    }

    /// The budget of the route called `name`.
    pub fn route(&self, name: &Arc<str>) -> Arc<RetryBudget> {
        if let Some(b) = self.routes.get(name) {
            return b.clone();
        }
        self.routes.entry(name.clone()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_requests_with_a_floor() {
        let b = RetryBudget::default();
        for _ in 0..100 {
            b.request(5);
        }
        let granted = (0..100).filter(|_| b.try_retry(20, 5)).count();
        assert_eq!(granted, 20);
        let quiet = RetryBudget::default();
        quiet.request(1);
        assert_eq!((0..10).filter(|_| quiet.try_retry(20, 1)).count(), 3);
        assert!(!RetryBudget::default().try_retry(0, 1), "0% is no retry");
    }

    #[test]
    fn the_window_slides() {
        let b = RetryBudget::default();
        for _ in 0..100 {
            b.request(1);
        }
        assert_eq!((0..50).filter(|_| b.try_retry(10, 1)).count(), 10);
        // Nine seconds later the requests still count, and so do the retries.
        assert!(!b.try_retry(10, 10));
        // Past the window: only the floor.
        assert_eq!((0..50).filter(|_| b.try_retry(10, 11)).count(), 3);
    }
}
