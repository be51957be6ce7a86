//! Windowed per-group statistics: requests, errors and latency buckets in one-second slots,
//! recorded with relaxed atomics on a handle the request path got at commit (no lock, no
//! allocation per request). The rollout judges its gates on a snapshot of the last seconds.
//!
//! A slot is claimed for a new second by the first request of that second (a compare-and-swap of
//! its second, then its counters are zeroed). A request of the same second racing with that
//! zeroing may be lost; a count off by one in a second is the price of no lock.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds kept: the longest window (300 s) plus the second under way and one spare.
pub const SLOTS: usize = 302;

/// Upper bounds of the latency buckets, milliseconds; one more bucket holds the rest.
pub const BUCKETS_MS: [u64; 18] = [
    1, 2, 5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 5000, 10_000,
];
const BUCKETS: usize = BUCKETS_MS.len() + 1;

struct Slot {
    second: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            second: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// One (route, group) pair's last seconds.
pub struct Window {
    slots: Box<[Slot]>,
}

/// Figures of a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    #[serde(skip)]
    pub buckets: [u64; BUCKETS],
}

/// The current second since the Unix epoch.
pub fn now_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn bucket(millis: u64) -> usize {
    BUCKETS_MS.partition_point(|b| *b < millis)
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

impl Window {
    pub fn new() -> Window {
        Window {
            slots: (0..SLOTS).map(|_| Slot::new()).collect(),
        }
    }

    /// Records a finished request that was answered whole with `status` (5xx, which upstream
    /// errors and timeouts before the head are answered with, are errors), `seconds` from its
    /// start.
    pub fn record(&self, status: u16, seconds: f64) {
        self.record_outcome(status >= 500, seconds);
    }

    /// Records a finished request that failed or not (a 5xx, an answer broken off after its
    /// head, a gRPC call's server error: see `TableMetrics::request_grpc`), `seconds` from its
    /// start.
    pub fn record_outcome(&self, error: bool, seconds: f64) {
        self.record_at(now_second(), error, (seconds * 1000.0) as u64);
    }

    pub fn record_at(&self, second: u64, error: bool, millis: u64) {
        let slot = &self.slots[(second % SLOTS as u64) as usize];
        let seen = slot.second.load(Ordering::Acquire);
        if seen != second {
            if seen > second {
                return; // a request that finished just before a second that is already counted
            }
            if slot
                .second
                .compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                slot.requests.store(0, Ordering::Relaxed);
                slot.errors.store(0, Ordering::Relaxed);
                for b in &slot.buckets {
                    b.store(0, Ordering::Relaxed);
                }
            }
        }
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        slot.buckets[bucket(millis)].fetch_add(1, Ordering::Relaxed);
    }

    /// The figures of the seconds `from..=to` (at most [`SLOTS`] - 1 of them).
    pub fn snapshot(&self, from: u64, to: u64) -> Figures {
        let mut f = Figures::default();
        let from = from.max(to.saturating_sub(SLOTS as u64 - 2));
        for s in from..=to {
            let slot = &self.slots[(s % SLOTS as u64) as usize];
            if slot.second.load(Ordering::Acquire) != s {
                continue;
            }
            f.requests += slot.requests.load(Ordering::Relaxed);
            f.errors += slot.errors.load(Ordering::Relaxed);
            for (acc, b) in f.buckets.iter_mut().zip(&slot.buckets) {
                *acc += b.load(Ordering::Relaxed);
            }
        }
        f
    }
}

/// One second of a window, as an upgrade hands it to the next process (which judges the same
/// seconds: a canary breaching before the upgrade is still breaching after it).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SecondRecord {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub buckets: Vec<u64>,
}

impl Window {
    /// The seconds with requests among the last ones kept up to `now`.
    pub fn export(&self, now: u64) -> Vec<SecondRecord> {
        let from = now.saturating_sub(SLOTS as u64 - 2);
        (from..=now)
            .filter_map(|s| {
                let slot = &self.slots[(s % SLOTS as u64) as usize];
                let requests = slot.requests.load(Ordering::Relaxed);
                (slot.second.load(Ordering::Acquire) == s && requests > 0).then(|| SecondRecord {
                    second: s,
                    requests,
                    errors: slot.errors.load(Ordering::Relaxed),
                    buckets: slot
                        .buckets
                        .iter()
                        .map(|b| b.load(Ordering::Relaxed))
                        .collect(),
                })
            })
            .collect()
    }

    /// Adds handed-over seconds (to a second this window counted too, or in place of an older
    /// one in the same slot).
    pub fn restore(&self, records: &[SecondRecord]) {
        for r in records {
            let slot = &self.slots[(r.second % SLOTS as u64) as usize];
            let seen = slot.second.load(Ordering::Acquire);
            if seen > r.second {
                continue;
            }
            if seen < r.second {
                slot.second.store(r.second, Ordering::Release);
                slot.requests.store(0, Ordering::Relaxed);
                slot.errors.store(0, Ordering::Relaxed);
                for b in &slot.buckets {
                    b.store(0, Ordering::Relaxed);
                }
            }
            slot.requests.fetch_add(r.requests, Ordering::Relaxed);
            slot.errors.fetch_add(r.errors, Ordering::Relaxed);
            for (b, n) in slot.buckets.iter().zip(&r.buckets) {
                b.fetch_add(*n, Ordering::Relaxed);
            }
        }
    }
}

impl Figures {
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// The latency at `percentile` (0..=100), as the upper bound of its bucket in milliseconds
    /// (`None` without requests; past the last bound: twice the last bound).
    pub fn latency_ms(&self, percentile: f64) -> Option<u64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((percentile / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(
                    BUCKETS_MS
                        .get(i)
                        .copied()
                        .unwrap_or(2 * BUCKETS_MS[BUCKETS - 2]),
                );
            }
        }
        None
    }

    pub fn add(&mut self, o: &Figures) {
        self.requests += o.requests;
        self.errors += o.errors;
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_seconds_asked_and_forgets_old_ones() {
        let w = Window::new();
        for _ in 0..10 {
            w.record_at(100, false, 3);
        }
        w.record_at(101, true, 400);
        w.record_at(101 + SLOTS as u64, false, 1); // reuses slot of second 101
        assert_eq!(w.snapshot(100, 100).requests, 10);
        let f = w.snapshot(100, 101);
        assert_eq!((f.requests, f.errors), (10, 0));
        let f = w.snapshot(101 + SLOTS as u64, 101 + SLOTS as u64);
        assert_eq!((f.requests, f.errors), (1, 0));
        w.record_at(101, true, 1); // older than its slot's second: ignored
        let f = w.snapshot(101 + SLOTS as u64, 101 + SLOTS as u64);
        assert_eq!((f.requests, f.errors), (1, 0));
    }

    #[test]
    fn percentile_is_the_bucket_bound() {
        let w = Window::new();
        for _ in 0..95 {
            w.record_at(5, false, 20);
        }
        for _ in 0..5 {
            w.record_at(5, true, 900);
        }
        let f = w.snapshot(0, 5);
        assert_eq!(f.latency_ms(95.0), Some(25));
        assert_eq!(f.latency_ms(99.0), Some(1000));
        assert!((f.error_rate() - 0.05).abs() < 1e-9);
        assert_eq!(Figures::default().latency_ms(99.0), None);
    }

    #[test]
    fn a_window_handed_over_judges_the_same_seconds() {
        let old = Window::new();
        for i in 0..30 {
            old.record_at(1_000 + i % 3, i % 2 == 0, 40);
        }
        let records = old.export(1_005);
        assert_eq!(records.len(), 3);
        let new = Window::new();
        new.record_at(1_002, true, 40);
        new.restore(&records);
        let f = new.snapshot(1_000, 1_005);
        assert_eq!((f.requests, f.errors), (31, 16));
        assert_eq!(f.buckets.iter().sum::<u64>(), 31);
        // Seconds older than what a slot holds already are not taken.
        let newer = Window::new();
        newer.record_at(1_000 + SLOTS as u64, false, 1);
        newer.restore(&records);
        assert_eq!(newer.snapshot(1_000, 1_000).requests, 0);
        assert_eq!(newer.snapshot(1_001, 1_002).requests, 20);
    }
}
