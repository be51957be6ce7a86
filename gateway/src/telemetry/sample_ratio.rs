//! `tracing.sample_ratio`: the share of new traces (no valid incoming `traceparent`) marked
//! sampled. One value shared by every request of the proxy, read once per new trace (an atomic
//! load), set by a SIGHUP that changes gateway.yaml; clamped to 0..=1 (the config refuses
//! anything else).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The handle: clones share the value.
#[derive(Debug, Clone)]
pub struct SampleRatio(Arc<AtomicU64>);

impl SampleRatio {
    pub fn new(ratio: f64) -> SampleRatio {
        SampleRatio(Arc::new(AtomicU64::new(clamp(ratio).to_bits())))
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// The next new trace is sampled at `ratio`.
    pub fn set(&self, ratio: f64) {
        self.0.store(clamp(ratio).to_bits(), Ordering::Relaxed);
    }
}

fn clamp(ratio: f64) -> f64 {
    if ratio.is_nan() {
        0.0
    } else {
        ratio.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::SampleRatio;

    #[test]
    fn clones_share_the_value_and_it_stays_a_ratio() {
        let a = SampleRatio::new(0.25);
        let b = a.clone();
        assert_eq!(b.get(), 0.25);
        a.set(1.0);
        assert_eq!(b.get(), 1.0);
        b.set(7.0);
        assert_eq!(a.get(), 1.0);
        b.set(-1.0);
        assert_eq!(a.get(), 0.0);
        b.set(f64::NAN);
        assert_eq!(a.get(), 0.0);
    }
}
