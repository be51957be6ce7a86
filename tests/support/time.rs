//! Times as the gateway writes them (RFC 3339, UTC, milliseconds), read back for assertions.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `2026-12-07T17:45:03.805Z` as milliseconds since the epoch.
pub fn rfc3339_ms(t: &str) -> i64 {
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = t
        .get(20..23)
        .and_then(|x| x.parse::<i64>().ok())
        .unwrap_or(0);
    ((days * 24 + num(11..13)) * 60 + num(14..16)) * 60_000 + num(17..19) * 1000 + ms
}

/// A clock pair taken at one moment, to place the gateway's wall-clock times on the test's
/// `Instant`s (both on this machine).
#[derive(Clone, Copy)]
pub struct Clocks {
    instant: Instant,
    unix_ms: i64,
}

impl Clocks {
    pub fn now() -> Clocks {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Clocks {
            instant: Instant::now(),
            unix_ms,
        }
    }

    /// The `Instant` of a time the gateway wrote (`2026-12-07T17:45:03.805Z`).
    pub fn instant_of(&self, rfc3339: &str) -> Instant {
        let ms = rfc3339_ms(rfc3339) - self.unix_ms;
        if ms >= 0 {
            self.instant + Duration::from_millis(ms as u64)
        } else {
            self.instant - Duration::from_millis(ms.unsigned_abs())
        }
    }
}
