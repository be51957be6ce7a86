//! The copies' answers per (route, shadow group), in one-second slots, as a rollout's shadow
//! stage judges them: copies ended, the shadow's failures among them (a 5xx answer, an error, a
//! timeout), copies compared and mismatches, and the shadow's latency. Fed by [`MirrorMetrics`]
//! (`super::metrics`) as it counts each copy; read by `crate::rollout::shadow`. Lock-free per
//! copy once a pair exists (relaxed atomics, as `telemetry::window`: a count off by one in a
//! second is the price of no lock).
//!
//! [`MirrorMetrics`]: super::MirrorMetrics

use super::Outcome;
use crate::telemetry::window::{Figures, BUCKETS_MS};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Seconds kept: the longest window judged (300 s), the second under way and one spare.
const SLOTS: usize = 302;
const BUCKETS: usize = BUCKETS_MS.len() + 1;

/// Every pair's seconds, made on a pair's first copy.
#[derive(Default)]
pub struct Tally {
    pairs: RwLock<HashMap<String, HashMap<String, Arc<Seconds>>>>,
}

/// The figures of a pair over some seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShadowCounts {
    /// Copies that ended (answered, failed or timed out; not those dropped or too large), as
    /// `requests`, the shadow's failures among them as `errors`, and the answered ones'
    /// latency buckets.
    pub answers: Figures,
    /// Copies whose answers were compared, and those that differed.
    pub compared: u64,
    pub mismatches: u64,
}

impl ShadowCounts {
    /// `other` added in: counts and latency buckets (a fleet's tally is the sum of its
    /// gateways').
    pub fn add(&mut self, other: &ShadowCounts) {
        self.answers.add(&other.answers);
        self.compared += other.compared;
        self.mismatches += other.mismatches;
    }
}

struct Slot {
    second: AtomicU64,
    /// ended, failed, compared, mismatched
    counts: [AtomicU64; 4],
    buckets: [AtomicU64; BUCKETS],
}

/// One pair's last seconds.
pub struct Seconds {
    slots: Box<[Slot]>,
}

const ENDED: usize = 0;
const FAILED: usize = 1;
const COMPARED: usize = 2;
const MISMATCHED: usize = 3;

impl Tally {
    fn pair(&self, route: &str, group: &str) -> Arc<Seconds> {
        let read = self.pairs.read().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = read.get(route).and_then(|g| g.get(group)) {
            return s.clone();
        }
        drop(read);
        let mut write = self.pairs.write().unwrap_or_else(|p| p.into_inner());
        (write.entry(route.to_string()).or_default())
            .entry(group.to_string())
            .or_insert_with(|| Arc::new(Seconds::new()))
            .clone()
    }

    /// How a copy ended (`MirrorMetrics::outcome`).
    pub fn outcome(&self, route: &str, group: &str, outcome: Outcome, second: u64) {
        let counts: &[usize] = match outcome {
            // Not sent, or sent for a real answer that never ended whole: not the shadow's.
            Outcome::Dropped | Outcome::TooLarge | Outcome::PrimaryAborted => return,
            Outcome::Sent => &[ENDED],
            Outcome::Match => &[ENDED, COMPARED],
            Outcome::StatusMismatch | Outcome::BodyMismatch => &[ENDED, COMPARED, MISMATCHED],
            Outcome::ShadowError | Outcome::ShadowTimeout => &[ENDED, FAILED],
        };
        let s = self.pair(route, group);
        let slot = s.slot(second);
        for c in counts {
            slot.counts[*c].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A copy's whole answer: its status (a 5xx is the shadow's failure) and time.
    pub fn answer(&self, route: &str, group: &str, status: u16, millis: u64, second: u64) {
        let s = self.pair(route, group);
        let slot = s.slot(second);
        if status >= 500 {
            slot.counts[FAILED].fetch_add(1, Ordering::Relaxed);
        }
        let b = BUCKETS_MS.partition_point(|b| *b < millis);
        slot.buckets[b].fetch_add(1, Ordering::Relaxed);
    }

    /// The pair's figures over the seconds `from..=to` (nothing for a pair without copies).
    pub fn counts(&self, route: &str, group: &str, from: u64, to: u64) -> ShadowCounts {
        let read = self.pairs.read().unwrap_or_else(|p| p.into_inner());
        match read.get(route).and_then(|g| g.get(group)) {
            Some(s) => s.counts(from, to),
            None => ShadowCounts::default(),
        }
    }
}

/// One second of a pair, as an upgrade hands it to the next process (a shadow stage under way
/// is judged on the same copies after it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TallySecond {
    pub second: u64,
    /// Ended, failed, compared, mismatched.
    pub counts: [u64; 4],
    pub buckets: Vec<u64>,
}

/// A pair's seconds as handed over: (route, group, seconds).
pub type PairSeconds = (String, String, Vec<TallySecond>);

impl Tally {
    /// Every pair's seconds with copies among the last ones kept up to `now`.
    pub fn export(&self, now: u64) -> Vec<PairSeconds> {
        let read = self.pairs.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (route, groups) in read.iter() {
            for (group, s) in groups {
                let seconds = s.export(now);
                if !seconds.is_empty() {
                    out.push((route.clone(), group.clone(), seconds));
                }
            }
        }
        out
    }

    /// Adds handed-over seconds (to a second counted here too, or in place of an older one).
    pub fn restore(&self, pairs: &[PairSeconds]) {
        for (route, group, seconds) in pairs {
            let s = self.pair(route, group);
            for r in seconds {
                let slot = s.slot(r.second);
                if slot.second.load(Ordering::Acquire) != r.second {
                    continue; // a newer second holds the slot
                }
                for (c, n) in slot.counts.iter().zip(&r.counts) {
                    c.fetch_add(*n, Ordering::Relaxed);
                }
                for (b, n) in slot.buckets.iter().zip(&r.buckets) {
                    b.fetch_add(*n, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Seconds {
    fn export(&self, now: u64) -> Vec<TallySecond> {
        let from = now.saturating_sub(SLOTS as u64 - 2);
        (from..=now)
            .filter_map(|s| {
                let slot = &self.slots[(s % SLOTS as u64) as usize];
                let counts = slot.counts.each_ref().map(|c| c.load(Ordering::Relaxed));
                let buckets: Vec<u64> = (slot.buckets.iter())
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                let any = counts.iter().chain(&buckets).any(|n| *n > 0);
                (slot.second.load(Ordering::Acquire) == s && any).then_some(TallySecond {
                    second: s,
                    counts,
                    buckets,
                })
            })
            .collect()
    }
}

impl Seconds {
    fn new() -> Seconds {
        Seconds {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    second: AtomicU64::new(0),
                    counts: std::array::from_fn(|_| AtomicU64::new(0)),
                    buckets: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
        }
    }

    /// The slot of `second`, claimed (and zeroed) by the first count of that second.
    fn slot(&self, second: u64) -> &Slot {
        let slot = &self.slots[(second % SLOTS as u64) as usize];
        let seen = slot.second.load(Ordering::Acquire);
        if seen < second
            && (slot.second)
                .compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            for c in slot.counts.iter().chain(&slot.buckets) {
                c.store(0, Ordering::Relaxed);
            }
        }
        slot
    }

    fn counts(&self, from: u64, to: u64) -> ShadowCounts {
        let mut out = ShadowCounts::default();
        let from = from.max(to.saturating_sub(SLOTS as u64 - 2));
        for s in from..=to {
            let slot = &self.slots[(s % SLOTS as u64) as usize];
            if slot.second.load(Ordering::Acquire) != s {
                continue;
            }
            let n = |i: usize| slot.counts[i].load(Ordering::Relaxed);
            out.answers.requests += n(ENDED);
            out.answers.errors += n(FAILED);
            out.compared += n(COMPARED);
            out.mismatches += n(MISMATCHED);
            for (acc, b) in out.answers.buckets.iter_mut().zip(&slot.buckets) {
                *acc += b.load(Ordering::Relaxed);
            }
        }
        // A 5xx is counted with its answer, the copy's end a moment later: never more
        // failures than copies in a window that cuts between them.
        out.answers.errors = out.answers.errors.min(out.answers.requests);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_failures_and_mismatches_are_counted_per_pair_and_second() {
        let t = Tally::default();
        for i in 0..10 {
            let status = if i < 3 { 503 } else { 200 };
            t.answer("shop", "canary", status, 20, 100);
            t.outcome("shop", "canary", Outcome::Sent, 100);
        }
        t.outcome("shop", "canary", Outcome::ShadowTimeout, 101);
        t.outcome("shop", "canary", Outcome::Dropped, 101);
        t.outcome("shop", "canary", Outcome::TooLarge, 101);
        t.answer("shop", "canary", 200, 900, 101);
        t.outcome("shop", "canary", Outcome::StatusMismatch, 101);
        t.answer("shop", "canary", 200, 5, 101);
        t.outcome("shop", "canary", Outcome::Match, 101);
        t.outcome("shop", "other", Outcome::ShadowError, 101);
        let c = t.counts("shop", "canary", 100, 101);
        assert_eq!((c.answers.requests, c.answers.errors), (13, 4));
        assert_eq!((c.compared, c.mismatches), (2, 1));
        assert_eq!(c.answers.latency_ms(50.0), Some(25));
        assert_eq!(c.answers.latency_ms(100.0), Some(1000));
        assert_eq!(t.counts("shop", "canary", 101, 101).answers.requests, 3);
        assert_eq!(t.counts("shop", "other", 100, 101).answers.errors, 1);
        assert_eq!(t.counts("cart", "canary", 0, 200), ShadowCounts::default());
        // Handed over to a new process: the same figures, added to its own.
        let next = Tally::default();
        next.outcome("shop", "canary", Outcome::ShadowError, 101);
        next.restore(&t.export(101));
        let c = next.counts("shop", "canary", 100, 101);
        assert_eq!((c.answers.requests, c.answers.errors), (14, 5));
        assert_eq!((c.compared, c.mismatches), (2, 1));
        assert_eq!(c.answers.latency_ms(100.0), Some(1000));
        assert_eq!(next.counts("shop", "other", 100, 101).answers.errors, 1);
        // A slot taken by a later second forgets the earlier one.
        t.outcome("shop", "canary", Outcome::Sent, 100 + SLOTS as u64);
        assert_eq!(t.counts("shop", "canary", 100, 100).answers.requests, 0);
    }
}
