//! Failures and latency an upstream is told to show (`demo-upstream --fail-rate 0.3
//! --latency-ms 200`, switched at run time with `POST /fail?rate=R` and `POST /latency?ms=N`):
//! how the README shows a canary's rollout taken back by its gates. The failures are spread
//! evenly, not drawn at random: a rate of 0.3 fails exactly 3 requests of every 10.

use std::sync::Mutex;

use serde_json::{json, Value};

#[derive(Debug, Default)]
pub struct DemoFaults {
    inner: Mutex<State>,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// Share of requests answered 500, 0 to 1.
    rate: f64,
    /// Added before every answer.
    latency_ms: u64,
    /// Error diffusion: the share owed so far; a request fails when it reaches 1.
    owed: f64,
}

impl DemoFaults {
    /// Starts with `rate` (0 to 1) and `latency_ms`; `Err` names a rate out of range.
    pub fn new(rate: f64, latency_ms: u64) -> Result<DemoFaults, String> {
        let faults = DemoFaults::default();
        faults.set_rate(rate)?;
        faults.set_latency(latency_ms);
        Ok(faults)
    }

    pub fn set_rate(&self, rate: f64) -> Result<(), String> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!(
                "found fail rate {rate}, expected a number from 0 to 1"
            ));
        }
        let mut s = self.lock();
        s.rate = rate;
        s.owed = 0.0;
        Ok(())
    }

    pub fn set_latency(&self, ms: u64) {
        self.lock().latency_ms = ms;
    }

    /// For the next request: its added latency, and whether it fails.
    pub fn next(&self) -> (u64, bool) {
        let mut s = self.lock();
        s.owed += s.rate;
        let fail = s.owed >= 1.0 - 1e-9;
        if fail {
            s.owed -= 1.0;
        }
        (s.latency_ms, fail)
    }

    /// The settings, as `POST /fail` and `POST /latency` answer them.
    pub fn to_json(&self) -> Value {
        let s = *self.lock();
        json!({ "fail_rate": s.rate, "latency_ms": s.latency_ms })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_fails_exactly_that_share_spread_evenly() {
        let f = DemoFaults::new(0.3, 200).expect("valid");
        let fails: Vec<bool> = (0..10).map(|_| f.next().1).collect();
        assert_eq!(fails.iter().filter(|x| **x).count(), 3, "{fails:?}");
        assert!(!fails[0] && !fails[1], "{fails:?}");
        assert_eq!(f.next().0, 200);
        f.set_rate(1.0).expect("valid");
        assert!((0..5).all(|_| f.next().1));
        f.set_rate(0.0).expect("valid");
        assert!((0..5).all(|_| !f.next().1));
        assert!(f.set_rate(1.5).is_err() && DemoFaults::new(-0.1, 0).is_err());
        assert_eq!(f.to_json(), json!({ "fail_rate": 0.0, "latency_ms": 200 }));
    }
}
