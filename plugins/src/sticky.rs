//! Sticky weighted split: a key is hashed into one of [`STICKY_BUCKETS`] buckets, and the split's
//! entries own consecutive bucket ranges in list order (nginx `split_clients` style).
//!
//! Raising an entry's weight only grows that entry's range, so a user already on the canary stays
//! there as its weight goes up (monotone ramp). The hash is fixed (FNV-1a 64 followed by the
//! SplitMix64 finaliser) and must never change: it decides which users are on the canary, across
//! restarts and upgrades.

/// Number of buckets a key is hashed into.
pub const STICKY_BUCKETS: u32 = 10_000;

/// The bucket of a sticky key; stable across processes, versions and platforms.
pub fn sticky_bucket(key: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV alone distributes short, similar keys (user-1, user-2, ...) poorly in the low bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h % u64::from(STICKY_BUCKETS)) as u32
}

/// The bucket ranges of a split: entry `i` owns buckets `[ends[i-1], ends[i])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyRanges {
    ends: Vec<u32>,
}

impl StickyRanges {
    /// Returns `None` when the total weight is zero.
    pub fn new(weights: &[u32]) -> Option<StickyRanges> {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut cum = 0u64;
        let ends = weights
            .iter()
            .map(|w| {
                cum += u64::from(*w);
                // floor(BUCKETS * cum / total): monotone in cum/total, so a larger share never
                // loses a bucket it had.
                (u64::from(STICKY_BUCKETS) * cum / total) as u32
            })
            .collect();
        Some(StickyRanges { ends })
    }

    /// The entry that owns `bucket`.
    pub fn entry_for_bucket(&self, bucket: u32) -> usize {
        // `ends` is sorted; the owner is the first range whose end is past the bucket. Entries
        // with weight 0 own an empty range and are never returned.
        self.ends
            .partition_point(|end| *end <= bucket)
            .min(self.ends.len().saturating_sub(1))
    }

    /// The entry for a key.
    pub fn entry_for_key(&self, key: &[u8]) -> usize {
        self.entry_for_bucket(sticky_bucket(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_is_frozen() {
        // These values decide which users are on the canary; they must never change.
        assert_eq!(sticky_bucket(b"user-1"), sticky_bucket(b"user-1"));
        let frozen: Vec<u32> = [&b""[..], b"user-1", b"user-2", b"alice"]
            .iter()
            .map(|k| sticky_bucket(k))
            .collect();
        assert_eq!(frozen, vec![6203, 7624, 8795, 572]);
    }

    #[test]
    fn deterministic_over_ten_thousand_keys() {
        let r = StickyRanges::new(&[90, 10]).expect("valid");
        for i in 0..10_000 {
            let key = format!("user-{i}");
            let first = r.entry_for_key(key.as_bytes());
            let again = StickyRanges::new(&[90, 10]).expect("valid");
            assert_eq!(first, again.entry_for_key(key.as_bytes()));
        }
    }

    #[test]
    fn share_within_one_percent_over_100k_keys() {
        for weights in [[95u32, 5], [50, 50], [80, 20], [1, 99]] {
            let r = StickyRanges::new(&weights).expect("valid");
            let mut c = [0u32; 2];
            for i in 0..100_000 {
                c[r.entry_for_key(format!("user-{i}").as_bytes())] += 1;
            }
            for i in 0..2 {
                let share = f64::from(c[i]) / 100_000.0;
                let want = f64::from(weights[i]) / 100.0;
                assert!(
                    (share - want).abs() <= 0.01,
                    "weights {weights:?} got {c:?}"
                );
            }
        }
    }

    #[test]
    fn zero_weight_gets_nothing() {
        let r = StickyRanges::new(&[0, 10, 0]).expect("valid");
        for b in 0..STICKY_BUCKETS {
            assert_eq!(r.entry_for_bucket(b), 1);
        }
        assert!(StickyRanges::new(&[0, 0]).is_none());
    }

    proptest! {
        #[test]
        fn raising_a_weight_never_moves_a_key_out_of_it(
            w in proptest::collection::vec(0u32..100, 2..5),
            which in 0usize..5,
            raise in 1u32..100,
        ) {
            let which = which % w.len();
            prop_assume!(w.iter().any(|x| *x > 0));
            let before = StickyRanges::new(&w).expect("valid");
            let mut w2 = w.clone();
            w2[which] += raise;
            let after = StickyRanges::new(&w2).expect("valid");
            for b in 0..STICKY_BUCKETS {
                if before.entry_for_bucket(b) == which && w[which] > 0 {
                    prop_assert_eq!(after.entry_for_bucket(b), which);
                }
            }
        }

        #[test]
        fn canary_ramp_keeps_canary_users(from in 1u32..50, step in 1u32..50) {
            let before = StickyRanges::new(&[100 - from, from]).expect("valid");
            let to = (from + step).min(100);
            let after = StickyRanges::new(&[100 - to, to]).expect("valid");
            for b in 0..STICKY_BUCKETS {
                if before.entry_for_bucket(b) == 1 {
                    prop_assert_eq!(after.entry_for_bucket(b), 1);
                }
            }
        }
    }
}
