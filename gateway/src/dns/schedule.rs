//! When a name is asked again, and when a failing name is logged again. Pure: times are given.

use std::time::{Duration, Instant};

/// The longest a record's TTL makes dyegate wait before asking again (when `dns.interval_ms` is
/// shorter): a name with a day-long TTL is still looked at every five minutes.
pub const TTL_CAP: Duration = Duration::from_secs(300);

/// How often a name that keeps failing is logged again (its first failure, and its recovery,
/// always are; every failure is counted).
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// When to ask again after an answer whose records live `ttl`: not before `interval` (a
/// shorter TTL does not make dyegate ask more often), and not before the TTL runs out (up to
/// [`TTL_CAP`]) when that is later.
pub fn next_after_answer(now: Instant, interval: Duration, ttl: Duration) -> Instant {
    now + interval.max(ttl.min(TTL_CAP))
}

/// When to ask again after a failure: after `interval` (the last addresses keep serving).
pub fn next_after_failure(now: Instant, interval: Duration) -> Instant {
    now + interval
}

/// Failures of one name in a row, and whether the next one is logged: the first one is, then
/// at most one every [`FAILURE_LOG_EVERY`] while the name keeps failing.
#[derive(Debug, Clone, Default)]
pub struct FailureLog {
    failures: u64,
    last_logged: Option<Instant>,
    /// Failures since the last one logged.
    unlogged: u64,
}

/// A failure to log: how many in a row, and how many were not logged since the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLine {
    pub in_a_row: u64,
    pub unlogged: u64,
}

impl FailureLog {
    /// Counts a failure; `Some` when it is to be logged.
    pub fn failed(&mut self, now: Instant) -> Option<LogLine> {
        self.failures += 1;
        let due = self
            .last_logged
            .is_none_or(|at| now.saturating_duration_since(at) >= FAILURE_LOG_EVERY);
        if !due {
            self.unlogged += 1;
            return None;
        }
        let line = LogLine {
            in_a_row: self.failures,
            unlogged: self.unlogged,
        };
        self.last_logged = Some(now);
        self.unlogged = 0;
        Some(line)
    }

    /// An answer: the failures in a row that it ends (0 when there were none).
    pub fn answered(&mut self) -> u64 {
        let ended = self.failures;
        *self = FailureLog::default();
        ended
    }

    /// Failures in a row now.
    pub fn failures(&self) -> u64 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(5);

    #[test]
    fn a_shorter_ttl_does_not_make_dyegate_ask_more_often() {
        let now = Instant::now();
        for ttl in [0, 1, 4, 5] {
            assert_eq!(
                next_after_answer(now, INTERVAL, Duration::from_secs(ttl)),
                now + INTERVAL,
                "ttl {ttl}"
            );
        }
    }

    #[test]
    fn a_longer_ttl_is_waited_for_up_to_the_cap() {
        let now = Instant::now();
        let at = |ttl| next_after_answer(now, INTERVAL, Duration::from_secs(ttl));
        assert_eq!(at(30), now + Duration::from_secs(30));
        assert_eq!(at(86_400), now + TTL_CAP);
        // An interval longer than the cap is still the interval.
        let long = Duration::from_secs(600);
        assert_eq!(
            next_after_answer(now, long, Duration::from_secs(86_400)),
            now + long
        );
        assert_eq!(next_after_failure(now, INTERVAL), now + INTERVAL);
    }

    #[test]
    fn failures_are_logged_at_a_bounded_rate() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        let line = |in_a_row, unlogged| Some(LogLine { in_a_row, unlogged });
        assert_eq!(log.failed(t0), line(1, 0), "the first failure is logged");
        // Every 5 s for a minute: counted, not logged.
        for i in 1..12 {
            assert_eq!(log.failed(t0 + INTERVAL * i), None, "failure {}", i + 1);
        }
        assert_eq!(log.failures(), 12);
        assert_eq!(log.failed(t0 + FAILURE_LOG_EVERY), line(13, 11));
        assert_eq!(log.answered(), 13, "the answer ends the row");
        assert_eq!(log.failures(), 0);
        assert_eq!(
            log.failed(t0 + FAILURE_LOG_EVERY + INTERVAL),
            line(1, 0),
            "a new row logs its first failure at once"
        );
        assert_eq!(FailureLog::default().answered(), 0);
    }
}
