//! A route's (or a tagged lane's) request rate limit: `limits: { rate_per_s, burst, key }`.
//!
//! Counting is Pingora's `pingora-limits` [`Rate`]: two count-min sketches (current and previous
//! second) of a fixed size, so memory is the same for 10 keys or 10 million — no map grows per
//! client. The rate is Cloudflare's sliding-window estimate (previous second weighted by what is
//! left of it, plus the current second). A request is refused while the estimate for its key is
//! at `rate_per_s + burst`; refused requests are not counted, so a client that slows down gets
//! in again within a second. Sketch collisions can only over-count: with far more active keys
//! than slots, some keys are limited a little early, never late.

use http::HeaderName;
use pingora_limits::rate::Rate;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Sketch rows (independent hashes) and columns: 2 windows x 4 x 16,384 x 8 bytes = 1 MiB per
/// limit, whatever the number of keys; counts stay close to exact up to ~16,000 keys active in a
/// second, and beyond that over-count.
const HASHES: usize = 4;
const SLOTS: usize = 16_384;

/// What requests are counted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    /// The request's client address (the peer, or what trusted proxies forwarded).
    ClientIp,
    /// A request header's value (a request without it is counted under the empty value).
    Header(HeaderName),
    /// Every request of the route together.
    Route,
}

/// One configured limit and its counters.
pub struct RateLimit {
    pub key: LimitKey,
    pub rate_per_s: u32,
    pub burst: u32,
    rate: Rate,
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("key", &self.key)
            .field("rate_per_s", &self.rate_per_s)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

/// The key of one request, borrowed from it.
#[derive(Hash)]
pub enum KeyOf<'r> {
    Ip(Option<IpAddr>),
    Bytes(&'r [u8]),
    Route,
}

impl RateLimit {
    pub fn new(key: LimitKey, rate_per_s: u32, burst: u32) -> Self {
        // A `route` key is a single counter: no need for a wide sketch.
        let slots = if key == LimitKey::Route { 1 } else { SLOTS };
        RateLimit {
            key,
            rate_per_s,
            burst,
            rate: Rate::new_with_estimator_config(Duration::from_secs(1), HASHES, slots),
        }
    }

    /// The key of a request under this limit.
    pub fn key_of<'r>(&self, client: Option<IpAddr>, headers: &'r http::HeaderMap) -> KeyOf<'r> {
        match &self.key {
            LimitKey::ClientIp => KeyOf::Ip(client),
            LimitKey::Header(name) => {
                KeyOf::Bytes(headers.get(name).map_or(&[][..], |v| v.as_bytes()))
            }
            LimitKey::Route => KeyOf::Route,
        }
    }

    /// Counts a request under `key`, or refuses it: `Err(seconds)` to put in `retry-after`.
    pub fn check(&self, key: &KeyOf<'_>) -> Result<(), u64> {
        let limit = f64::from(self.rate_per_s) + f64::from(self.burst);
        let estimate = self.rate.rate_with(key, |c| {
            c.prev_samples as f64 * (1.0 - c.current_interval_fraction) + c.curr_samples as f64
        });
        if estimate + 1.0 > limit {
            // The window is one second: by then the previous second's weight has gone.
            return Err(1);
        }
        self.rate.observe(key, 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_rate_plus_burst_then_is_refused_others_are_not() {
        let limit = RateLimit::new(LimitKey::ClientIp, 10, 5);
        let a = KeyOf::Ip(Some([10, 0, 0, 1].into()));
        let b = KeyOf::Ip(Some([10, 0, 0, 2].into()));
        let allowed = (0..100).filter(|_| limit.check(&a).is_ok()).count();
        assert_eq!(allowed, 15);
        assert_eq!(limit.check(&a), Err(1));
        assert_eq!(limit.check(&b), Ok(()));
    }

    #[test]
    fn route_and_header_keys() {
        let limit = RateLimit::new(LimitKey::Route, 3, 0);
        let allowed = (0..10)
            .filter(|_| limit.check(&KeyOf::Route).is_ok())
            .count();
        assert_eq!(allowed, 3);
        let limit = RateLimit::new(LimitKey::Header(HeaderName::from_static("x-user")), 1, 0);
        let mut h = http::HeaderMap::new();
        h.insert("x-user", "u1".parse().expect("value"));
        assert_eq!(limit.check(&limit.key_of(None, &h)), Ok(()));
        assert_eq!(limit.check(&limit.key_of(None, &h)), Err(1));
        h.insert("x-user", "u2".parse().expect("value"));
        assert_eq!(limit.check(&limit.key_of(None, &h)), Ok(()));
    }
}
