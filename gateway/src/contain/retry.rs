//! Whether a failed attempt is tried again, on another target of the same group: the route's
//! `retries` (attempts, `on`), what can be replayed, and the retry budget.

use super::budget::RetryBudget;
use crate::routing::{Retries, RetryReason};
use pingora::prelude::*;

/// The kind of failure an error of an attempt is, as `retries.on` names it.
pub fn reason_of(e: &Error, connecting: bool) -> Option<RetryReason> {
    if connecting {
        return Some(RetryReason::ConnectFailure);
    }
    match e.etype() {
        ConnectRefused | ConnectTimedout | ConnectNoRoute | ConnectError => {
            Some(RetryReason::ConnectFailure)
        }
        ReadTimedout | WriteTimedout => Some(RetryReason::Timeout),
        ConnectionClosed | ReadError | WriteError => Some(RetryReason::Reset),
        HTTPStatus(code) => RetryReason::for_status(*code),
        _ => None,
    }
}

/// What the request allows to be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    /// GET, HEAD, PUT, DELETE, OPTIONS, TRACE.
    pub idempotent: bool,
    /// The body read so far still fits Pingora's replay buffer (64 KiB).
    pub body_buffered: bool,
    /// Part of the response already went downstream.
    pub responded: bool,
    /// The group has a target that was not tried yet and may be picked.
    pub another_target: bool,
}

/// The answer for one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again; counted under this reason.
    Retry(RetryReason),
    /// A retry was allowed by the route but the budget is spent.
    BudgetExhausted,
    /// Not retried (not in `on`, attempts used, or not replayable).
    No,
}

/// Whether an attempt that failed with `reason` is retried, `retried` retries having been made.
/// Nothing is retried once part of the response went downstream; a request that is not
/// idempotent is retried only when it never reached the upstream (connect failure); a request
/// whose body outgrew the replay buffer is not retried after it was sent; a retry needs another
/// target of the group that may be picked.
pub fn verdict(
    retries: &Retries,
    reason: Option<RetryReason>,
    retried: usize,
    replay: Replay,
    budget: &RetryBudget,
    sec: u64,
) -> Verdict {
    let Some(reason) = reason.filter(|r| retries.on.contains(*r)) else {
        return Verdict::No;
    };
    if retried >= usize::from(retries.attempts) || replay.responded || !replay.another_target {
        return Verdict::No;
    }
    let sent = reason != RetryReason::ConnectFailure;
    if sent && !(replay.idempotent && replay.body_buffered) {
        return Verdict::No;
    }
    if budget.try_retry(retries.budget_percent, sec) {
        Verdict::Retry(reason)
    } else {
        Verdict::BudgetExhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::RetryOn;

    fn retries(attempts: u8, on: &[RetryReason]) -> Retries {
        Retries {
            attempts,
            on: on.iter().fold(RetryOn::default(), |s, r| s.with(*r)),
            budget_percent: 100,
        }
    }

    const GET: Replay = Replay {
        idempotent: true,
        body_buffered: true,
        responded: false,
        another_target: true,
    };
    const POST: Replay = Replay {
        idempotent: false,
        ..GET
    };

    #[test]
    fn only_the_listed_failures_within_attempts() {
        let b = RetryBudget::default();
        let r = retries(2, &[RetryReason::ConnectFailure, RetryReason::Status503]);
        let v = |reason, retried| verdict(&r, Some(reason), retried, GET, &b, 1);
        assert_eq!(
            v(RetryReason::ConnectFailure, 0),
            Verdict::Retry(RetryReason::ConnectFailure)
        );
        assert_eq!(
            v(RetryReason::Status503, 1),
            Verdict::Retry(RetryReason::Status503)
        );
        assert_eq!(
            v(RetryReason::Status503, 2),
            Verdict::No,
            "attempts: 2 extra tries"
        );
        assert_eq!(v(RetryReason::Reset, 0), Verdict::No, "not in `on`");
        assert_eq!(verdict(&r, None, 0, GET, &b, 1), Verdict::No);
    }

    #[test]
    fn what_was_sent_is_replayed_only_when_safe() {
        let b = RetryBudget::default();
        let r = retries(3, &[RetryReason::ConnectFailure, RetryReason::Reset]);
        assert_eq!(
            verdict(&r, Some(RetryReason::ConnectFailure), 0, POST, &b, 1),
            Verdict::Retry(RetryReason::ConnectFailure),
            "a POST that never reached the upstream"
        );
        assert_eq!(
            verdict(&r, Some(RetryReason::Reset), 0, POST, &b, 1),
            Verdict::No
        );
        let big = Replay {
            body_buffered: false,
            ..GET
        };
        assert_eq!(
            verdict(&r, Some(RetryReason::Reset), 0, big, &b, 1),
            Verdict::No
        );
        let responded = Replay {
            responded: true,
            ..GET
        };
        assert_eq!(
            verdict(&r, Some(RetryReason::Reset), 0, responded, &b, 1),
            Verdict::No
        );
    }

    #[test]
    fn the_budget_caps() {
        let b = RetryBudget::default();
        let r = Retries {
            budget_percent: 10,
            ..retries(1, &[RetryReason::ConnectFailure])
        };
        for _ in 0..50 {
            b.request(1);
        }
        let v: Vec<Verdict> = (0..10)
            .map(|_| verdict(&r, Some(RetryReason::ConnectFailure), 0, GET, &b, 1))
            .collect();
        assert_eq!(
            v.iter().filter(|v| matches!(v, Verdict::Retry(_))).count(),
            5
        );
        assert_eq!(v.last(), Some(&Verdict::BudgetExhausted));
    }
}
