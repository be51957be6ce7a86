//! The timeouts of one attempt: the route's `timeouts`, each capped by what is left of
//! `total_ms` (the whole request, retries included).

use crate::routing::Timeouts;
use crate::telemetry::TimeoutKind;
use pingora::prelude::*;
use std::time::Duration;

/// What one attempt may wait for, each capped by the time left before the request's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptTimeouts {
    pub connect: Duration,
    /// `None`: no read timeout (`read_ms: 0` and no `total_ms`).
    pub read: Option<Duration>,
    pub write: Duration,
}

/// The timeouts of an attempt starting `elapsed` into the request; `None` when `total_ms` has
/// already passed (the request answers 504 without another attempt).
pub fn attempt_timeouts(
    t: &Timeouts,
    default_connect: Duration,
    elapsed: impl FnOnce() -> Duration,
) -> Option<AttemptTimeouts> {
    // The clock is read only for a route with a total deadline.
    let left = match t.total {
        Some(total) => match total.checked_sub(elapsed()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return None,
        },
        None => None,
    };
    let cap = |d: Duration| left.map_or(d, |l| d.min(l));
    Some(AttemptTimeouts {
        connect: cap(t.connect.unwrap_or(default_connect)),
        // No read timeout, but a deadline: the deadline bounds each read.
        read: t.read.map(cap).or(left),
        write: cap(t.write),
    })
}

/// Which timeout an upstream error is, if it is one.
pub fn timeout_kind(e: &Error) -> Option<TimeoutKind> {
    match e.etype() {
        ConnectTimedout => Some(TimeoutKind::Connect),
        ReadTimedout => Some(TimeoutKind::Read),
        WriteTimedout => Some(TimeoutKind::Write),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn without_total_the_route_values_hold() {
        let t = Timeouts {
            connect: None,
            read: Some(ms(300)),
            write: ms(400),
            total: None,
        };
        // Without a total nothing depends on the time spent: the clock is not read.
        let no_clock = || -> Duration { panic!("the clock was read") };
        assert_eq!(
            attempt_timeouts(&t, ms(2000), no_clock),
            Some(AttemptTimeouts {
                connect: ms(2000),
                read: Some(ms(300)),
                write: ms(400)
            })
        );
    }

    #[test]
    fn total_caps_each_and_ends_the_request() {
        let t = Timeouts {
            connect: Some(ms(1000)),
            read: Some(ms(15_000)),
            write: ms(100),
            total: Some(ms(1000)),
        };
        assert_eq!(
            attempt_timeouts(&t, ms(2000), || ms(700)),
            Some(AttemptTimeouts {
                connect: ms(300),
                read: Some(ms(300)),
                write: ms(100)
            })
        );
        assert_eq!(attempt_timeouts(&t, ms(2000), || ms(1000)), None);
        let unbounded = Timeouts { read: None, ..t };
        assert_eq!(
            attempt_timeouts(&unbounded, ms(2000), || ms(700)).map(|a| a.read),
            Some(Some(ms(300)))
        );
        let none = Timeouts {
            total: None,
            ..unbounded
        };
        assert_eq!(
            attempt_timeouts(&none, ms(2000), || ms(700)).map(|a| a.read),
            Some(None)
        );
        assert_eq!(attempt_timeouts(&t, ms(2000), || ms(1500)), None);
    }
}
