//! Smooth weighted round-robin (the nginx algorithm), lock-free.
//!
//! The classic algorithm keeps mutable "current weights"; sharing that state across worker
//! threads needs a lock. Instead the whole cycle (total weight / gcd picks) is computed once at
//! compile time and a request takes `sequence[counter % len]` with one atomic add. The sequence
//! is exactly what the classic algorithm would produce, so over any window the realised share of
//! each entry is within one pick per cycle of its configured share. Very long cycles (more than
//! [`MAX_PRECOMPUTED`] picks) fall back to the classic algorithm behind a mutex.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Longest cycle that is precomputed (bytes of memory per split, one per pick).
pub const MAX_PRECOMPUTED: u64 = 1 << 16;

/// A weighted round-robin over entry indices `0..weights.len()`.
#[derive(Debug)]
pub struct SmoothWrr {
    picker: Picker,
    counter: AtomicU64,
}

#[derive(Debug)]
enum Picker {
    /// Only one entry has a positive weight.
    Single(usize),
    /// The full cycle, one entry index per pick.
    Sequence(Vec<u16>),
    /// The classic algorithm for cycles too long to precompute.
    Stateful(Mutex<ClassicState>),
}

#[derive(Debug, Clone)]
struct ClassicState {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl ClassicState {
    fn new(weights: &[u32]) -> Self {
        let weights: Vec<i64> = weights.iter().map(|w| i64::from(*w)).collect();
        let total = weights.iter().sum();
        ClassicState {
            current: vec![0; weights.len()],
            weights,
            total,
        }
    }

    /// One step of nginx's smooth weighted round-robin.
    fn next(&mut self) -> usize {
        let mut best = 0;
        for i in 0..self.weights.len() {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        best
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl SmoothWrr {
    /// Builds the picker. Returns `None` when no weight is positive (validation rejects that
    /// earlier) or there are more than 65,536 entries.
    pub fn new(weights: &[u32]) -> Option<SmoothWrr> {
        if weights.len() > usize::from(u16::MAX) + 1 {
            return None;
        }
        let positive: Vec<usize> = (0..weights.len()).filter(|i| weights[*i] > 0).collect();
        let picker = match positive.as_slice() {
            [] => return None,
            [only] => Picker::Single(*only),
            _ => {
                let g = weights
                    .iter()
                    .filter(|w| **w > 0)
                    .fold(0u64, |g, w| gcd(g, u64::from(*w)));
                let reduced: Vec<u32> =
                    weights.iter().map(|w| (u64::from(*w) / g) as u32).collect();
                let cycle: u64 = reduced.iter().map(|w| u64::from(*w)).sum();
                let mut state = ClassicState::new(&reduced);
                if cycle <= MAX_PRECOMPUTED {
                    let seq = (0..cycle).map(|_| state.next() as u16).collect();
                    Picker::Sequence(seq)
                } else {
                    Picker::Stateful(Mutex::new(state))
                }
            }
        };
        Some(SmoothWrr {
            picker,
            counter: AtomicU64::new(0),
        })
    }

    /// Index of the next entry.
    pub fn next(&self) -> usize {
        match &self.picker {
            Picker::Single(i) => *i,
            Picker::Sequence(seq) => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                // `seq` is never empty: the cycle has at least two positive weights.
                seq.get((n % seq.len() as u64) as usize)
                    .map_or(0, |i| usize::from(*i))
            }
            Picker::Stateful(state) => match state.lock() {
                Ok(mut s) => s.next(),
                Err(poisoned) => poisoned.into_inner().next(),
            },
        }
    }

    /// Where the cycle is now; a rebuilt picker with the same weights can continue from here
    /// (see [`SmoothWrr::resume_at`]) so a reload does not restart the cycle.
    pub fn position(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }

    /// Continues the cycle from `position`.
    pub fn resume_at(&self, position: u64) {
        self.counter.store(position, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(w: &[u32], n: usize) -> Vec<usize> {
        let wrr = SmoothWrr::new(w).expect("valid weights");
        let mut c = vec![0; w.len()];
        for _ in 0..n {
            c[wrr.next()] += 1;
        }
        c
    }

    #[test]
    fn exact_over_a_cycle() {
        assert_eq!(counts(&[95, 5], 100), vec![95, 5]);
        assert_eq!(counts(&[95, 5], 2000), vec![1900, 100]);
        assert_eq!(counts(&[1, 2, 3], 6), vec![1, 2, 3]);
        assert_eq!(counts(&[5, 0, 5], 10), vec![5, 0, 5]);
    }

    #[test]
    fn smooth_not_bursty() {
        // nginx's example: weights 5,1,1 give a a b a c a a, not a a a a a b c.
        let wrr = SmoothWrr::new(&[5, 1, 1]).expect("valid");
        let seq: Vec<usize> = (0..7).map(|_| wrr.next()).collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn all_zero_or_empty_is_rejected() {
        assert!(SmoothWrr::new(&[0, 0]).is_none());
        assert!(SmoothWrr::new(&[]).is_none());
        assert_eq!(counts(&[0, 7], 5), vec![0, 5]);
    }

    #[test]
    fn long_cycles_use_the_classic_algorithm() {
        // cycle of 100,003 picks: too long to precompute, still exact.
        assert_eq!(counts(&[100_000, 3], 100_003), vec![100_000, 3]);
    }

    proptest! {
        #[test]
        fn any_window_within_one_pick_per_entry(
            w in proptest::collection::vec(0u32..50, 1..6),
            start in 0usize..200,
            len in 1usize..500,
        ) {
            prop_assume!(w.iter().any(|x| *x > 0));
            let total: u32 = w.iter().sum();
            let wrr = SmoothWrr::new(&w).expect("valid");
            for _ in 0..start { wrr.next(); }
            let mut c = vec![0f64; w.len()];
            for _ in 0..len { c[wrr.next()] += 1.0; }
            for i in 0..w.len() {
                let ideal = len as f64 * f64::from(w[i]) / f64::from(total);
                // smooth WRR keeps every entry within one pick per entry of its ideal share.
                prop_assert!((c[i] - ideal).abs() <= w.len() as f64, "w={w:?} c={c:?} i={i}");
                if w[i] == 0 { prop_assert_eq!(c[i], 0.0); }
            }
        }
    }
}
