//! A route's compiled `mirror` entries: which group gets copies, of which requests, within
//! which bounds, and how answers are compared. The sampling counter and the in-flight count
//! live here, so a route carried over by a reload keeps them; no I/O (`crate::mirror` sends).

use super::group::GroupId;
use http::{HeaderName, Method};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// `percent` in thousandths of a percent: 100% is this many.
pub const FULL_SHARE: u32 = 100_000;

/// One `mirror` entry of a route.
#[derive(Debug)]
pub struct Mirror {
    pub group: GroupId,
    /// The share in thousandths of a percent (1 to [`FULL_SHARE`]).
    pub share: u32,
    pub max_body_bytes: u64,
    pub max_in_flight: u32,
    pub timeout: Duration,
    pub methods: Vec<Method>,
    pub compare: Option<Compare>,
    /// Requests of the mirrored methods seen so far.
    seen: AtomicU64,
    in_flight: AtomicU32,
}

/// `compare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub status: bool,
    pub body: bool,
    /// Response headers compared at all (`compare.headers`).
    pub headers: bool,
    /// Response headers left out of the comparison (hop-by-hop ones always are).
    pub ignore_headers: Vec<HeaderName>,
    /// The stable group a second copy goes to: a difference it shows against the real answer
    /// too is noise.
    pub baseline: Option<GroupId>,
}

/// What [`Mirror::admit`] says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not a method the entry mirrors: not counted at all.
    OtherMethod,
    /// Counted, but not in the sampled share.
    NotSampled,
    /// Sampled, but `max_in_flight` copies are in flight already.
    Full,
    /// Sampled and admitted: the holder must call [`Mirror::done`] once.
    Send,
}

/// Whether the `n`-th request (from 0) is in a share of `share` thousandths of a percent: one
/// exactly when `n * share / FULL_SHARE` steps up, so any `FULL_SHARE / share` requests in a
/// row hold the share exactly (10% of 1,000 is 100).
pub fn sampled(n: u64, share: u32) -> bool {
    let s = u128::from(share);
    let n = u128::from(n);
    (n + 1) * s / u128::from(FULL_SHARE) > n * s / u128::from(FULL_SHARE)
}

impl Mirror {
    pub fn new(
        group: GroupId,
        share: u32,
        max_body_bytes: u64,
        max_in_flight: u32,
        timeout: Duration,
        methods: Vec<Method>,
        compare: Option<Compare>,
    ) -> Self {
        Mirror {
            group,
            share: share.clamp(1, FULL_SHARE),
            max_body_bytes,
            max_in_flight,
            timeout,
            methods,
            compare,
            seen: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
        }
    }

    /// Counts a request of the route and says whether a copy of it goes out.
    pub fn admit(&self, method: &Method) -> Admission {
        if !self.methods.contains(method) {
            return Admission::OtherMethod;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        if !sampled(n, self.share) {
            return Admission::NotSampled;
        }
        let entered = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now < self.max_in_flight).then_some(now + 1)
            });
        match entered {
            Ok(_) => Admission::Send,
            Err(_) => Admission::Full,
        }
    }

    /// A copy admitted by [`Mirror::admit`] has ended.
    pub fn done(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Copies in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// The methods mirrored when `methods` is not given: the safe ones, which a copy cannot repeat
/// a write with.
pub fn default_methods() -> Vec<Method> {
    vec![Method::GET, Method::HEAD, Method::OPTIONS]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(share: u32, requests: u64) -> u64 {
        (0..requests).filter(|&n| sampled(n, share)).count() as u64
    }

    #[test]
    fn the_share_is_exact_over_any_whole_period() {
        assert_eq!(count(10_000, 1_000), 100);
        assert_eq!(count(10_000, 10_000), 1_000);
        assert_eq!(count(FULL_SHARE, 1_000), 1_000);
        assert_eq!(count(1, 100_000), 1);
        assert_eq!(count(33_333, 100_000), 33_333);
        // Spread out, not in a burst: one in every ten.
        for start in (0..1_000).step_by(10) {
            assert_eq!(count_from(10_000, start, 10), 1);
        }
    }

    fn count_from(share: u32, start: u64, len: u64) -> u64 {
        (start..start + len).filter(|&n| sampled(n, share)).count() as u64
    }

    #[test]
    fn only_the_methods_are_counted_and_in_flight_is_bounded() {
        let m = Mirror::new(
            0,
            FULL_SHARE,
            0,
            2,
            Duration::from_secs(1),
            default_methods(),
            None,
        );
        assert_eq!(m.admit(&Method::POST), Admission::OtherMethod);
        assert_eq!(m.admit(&Method::GET), Admission::Send);
        assert_eq!(m.admit(&Method::GET), Admission::Send);
        assert_eq!(m.admit(&Method::GET), Admission::Full);
        m.done();
        assert_eq!(m.in_flight(), 1);
        assert_eq!(m.admit(&Method::HEAD), Admission::Send);
        let half = Mirror::new(
            0,
            50_000,
            0,
            9,
            Duration::from_secs(1),
            default_methods(),
            None,
        );
        let sent: Vec<Admission> = (0..4).map(|_| half.admit(&Method::GET)).collect();
        use Admission::*;
        assert_eq!(sent, vec![NotSampled, Send, NotSampled, Send]);
    }
}
