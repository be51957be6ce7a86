//! One target's health: the verdict of its active checks, its passive ejection, its load. All
//! atomics: the request path reads and updates it without a lock.

use crate::routing::{HealthCheck, Outlier};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

/// How a real request's attempt on a target ended, for outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// An answer below 500 that arrived whole.
    Success,
    /// Connect error, reset, timeout, a 5xx answer, or an answer that broke off after its head
    /// (a body cut short, a reset stream, a gRPC call without `grpc-status`).
    Failure,
}

/// Result of the last active check, as `/upstreams` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastCheck {
    None = 0,
    Success = 1,
    Failure = 2,
}

/// An ejection a failure called for: how long, and its place in the row of ejections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    pub time: Duration,
    row: u32,
}

/// What a transition changed in whether the target may be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Down,
    Up,
}

/// The health of one target address. Times are milliseconds on the registry's clock.
#[derive(Debug)]
pub struct TargetState {
    /// The active checks' verdict (true until checks say otherwise).
    checks_healthy: AtomicBool,
    check_failures: AtomicU32,
    check_successes: AtomicU32,
    /// A check of this target is running (never more than one).
    checking: AtomicBool,
    last_check: AtomicU8,
    last_check_ms: AtomicU64,
    /// Consecutive failed attempts of real requests.
    consecutive_failures: AtomicU32,
    /// Ejected until this time; 0 when not ejected.
    ejected_until_ms: AtomicU64,
    /// Ejections in a row (doubles the ejection time), and when the last one ended.
    ejections: AtomicU32,
    last_eject_end_ms: AtomicU64,
    /// Attempts on this target in flight right now, and failed attempts ever.
    pub in_flight: AtomicU32,
    pub failures: AtomicU64,
}

impl Default for TargetState {
    fn default() -> Self {
        TargetState {
            checks_healthy: AtomicBool::new(true),
            check_failures: AtomicU32::new(0),
            check_successes: AtomicU32::new(0),
            checking: AtomicBool::new(false),
            last_check: AtomicU8::new(LastCheck::None as u8),
            last_check_ms: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            last_eject_end_ms: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            failures: AtomicU64::new(0),
        }
    }
}

impl TargetState {
    /// Whether the target may be picked at `now_ms`.
    pub fn is_available(&self, now_ms: u64) -> bool {
        self.checks_healthy.load(Ordering::Relaxed)
            && now_ms >= self.ejected_until_ms.load(Ordering::Relaxed)
    }

    pub fn checks_healthy(&self) -> bool {
        self.checks_healthy.load(Ordering::Relaxed)
    }

    /// Ejected until (registry clock), if ejected.
    pub fn ejected_until(&self) -> Option<u64> {
        match self.ejected_until_ms.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    pub fn last_check(&self) -> (LastCheck, u64) {
        let r = match self.last_check.load(Ordering::Relaxed) {
            1 => LastCheck::Success,
            2 => LastCheck::Failure,
            _ => LastCheck::None,
        };
        (r, self.last_check_ms.load(Ordering::Relaxed))
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Claims the right to run a check; `false` when one is already running.
    pub fn begin_check(&self) -> bool {
        self.checking
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Records a check's result (and releases the claim); says whether the checks' verdict
    /// changed.
    pub fn end_check(&self, ok: bool, cfg: &HealthCheck, now_ms: u64) -> Change {
        self.last_check.store(
            if ok {
                LastCheck::Success
            } else {
                LastCheck::Failure
            } as u8,
            Ordering::Relaxed,
        );
        self.last_check_ms.store(now_ms, Ordering::Relaxed);
        let change = if ok {
            self.check_failures.store(0, Ordering::Relaxed);
            let n = self.check_successes.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= cfg.healthy_after && self.set_checks_healthy(true) {
                Change::Up
            } else {
                Change::None
            }
        } else {
            self.check_successes.store(0, Ordering::Relaxed);
            let n = self.check_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= cfg.unhealthy_after && self.set_checks_healthy(false) {
                Change::Down
            } else {
                Change::None
            }
        };
        self.checking.store(false, Ordering::Release);
        change
    }

    /// Whether the verdict changed to `healthy`.
    fn set_checks_healthy(&self, healthy: bool) -> bool {
        self.checks_healthy
            .compare_exchange(!healthy, healthy, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Counts a real attempt's result. Returns the ejection time when this failure reaches
    /// `consecutive_failures` (the caller decides, by the group's ejected share, whether to
    /// [`Self::eject`]).
    pub fn record(
        &self,
        attempt: Attempt,
        outlier: Option<&Outlier>,
        now_ms: u64,
    ) -> Option<Ejection> {
        match attempt {
            Attempt::Success => {
                // A store only when needed: the common case touches no shared cache line.
                if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                    self.consecutive_failures.store(0, Ordering::Relaxed);
                }
                None
            }
            Attempt::Failure => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let o = outlier?;
                let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                if n < o.consecutive_failures || !self.is_available(now_ms) {
                    return None;
                }
                Some(self.ejection_time(o, now_ms))
            }
        }
    }

    /// `eject` doubled for each ejection in a row, at most 10 times `eject`. The row ends once
    /// the target has stayed in for the longest ejection time.
    fn ejection_time(&self, o: &Outlier, now_ms: u64) -> Ejection {
        let cap = o.eject * 10;
        let since_last = now_ms.saturating_sub(self.last_eject_end_ms.load(Ordering::Relaxed));
        let row = if since_last > cap.as_millis() as u64 {
            0
        } else {
            self.ejections.load(Ordering::Relaxed)
        };
        let factor = 1u32 << row.min(16);
        Ejection {
            time: o.eject.saturating_mul(factor).min(cap),
            row,
        }
    }

    /// Ejects the target for `time`; `false` when it already was (another request won).
    pub fn eject(&self, e: Ejection, now_ms: u64) -> bool {
        let until = now_ms + e.time.as_millis().max(1) as u64;
        let current = self.ejected_until_ms.load(Ordering::Relaxed);
        if current > now_ms {
            return false;
        }
        if self
            .ejected_until_ms
            .compare_exchange(current, until, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.ejections.store(e.row + 1, Ordering::Relaxed);
        self.last_eject_end_ms.store(until, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        true
    }

    /// Ends an ejection that has run out; `true` when it did (the target is back).
    pub fn expire_ejection(&self, now_ms: u64) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        until != 0
            && now_ms >= until
            && self
                .ejected_until_ms
                .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Whether the target is marked down in any way (unhealthy, or ejected even if the ejection
    /// has run out but was not yet swept): what the registry's down count counts.
    pub fn is_marked_down(&self) -> bool {
        !self.checks_healthy() || self.ejected_until_ms.load(Ordering::Relaxed) != 0
    }

    /// The state as an upgrade hands it over; times relative to `now_ms` (each process has
    /// its own clock).
    pub fn export(&self, now_ms: u64) -> TargetRecord {
        let left = |at: u64| at as i64 - now_ms as i64;
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        let (last, last_ms) = self.last_check();
        TargetRecord {
            checks_healthy: self.checks_healthy(),
            check_failures: self.check_failures.load(Ordering::Relaxed),
            check_successes: self.check_successes.load(Ordering::Relaxed),
            last_check: last as u8,
            last_check_ms: (last != LastCheck::None).then(|| left(last_ms)),
            consecutive_failures: self.consecutive_failures(),
            ejected_for_ms: (until > now_ms).then(|| until - now_ms),
            ejections: self.ejections.load(Ordering::Relaxed),
            last_eject_end_ms: (self.ejections.load(Ordering::Relaxed) > 0)
                .then(|| left(self.last_eject_end_ms.load(Ordering::Relaxed))),
        }
    }

    /// Takes a handed-over state, `passed_ms` after it was exported, at `now_ms` on this
    /// process's clock: an ejection keeps what is left of it.
    pub fn restore(&self, r: &TargetRecord, passed_ms: u64, now_ms: u64) {
        let at = |rel: i64| (now_ms as i64 + rel - passed_ms as i64).max(0) as u64;
        self.checks_healthy
            .store(r.checks_healthy, Ordering::Relaxed);
        self.check_failures
            .store(r.check_failures, Ordering::Relaxed);
        self.check_successes
            .store(r.check_successes, Ordering::Relaxed);
        self.last_check
            .store(r.last_check.min(2), Ordering::Relaxed);
        self.last_check_ms
            .store(r.last_check_ms.map_or(0, at), Ordering::Relaxed);
        self.consecutive_failures
            .store(r.consecutive_failures, Ordering::Relaxed);
        let until = match r.ejected_for_ms {
            Some(left) if left > passed_ms => now_ms + (left - passed_ms),
            _ => 0,
        };
        self.ejected_until_ms.store(until, Ordering::Relaxed);
        self.ejections.store(r.ejections, Ordering::Relaxed);
        self.last_eject_end_ms
            .store(r.last_eject_end_ms.map_or(0, at), Ordering::Relaxed);
    }
}

/// One target's health as an upgrade hands it over (`handover` state): what the checks and
/// real traffic said, an ejection's time left. Times are milliseconds relative to the export
/// (negative: before it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetRecord {
    pub checks_healthy: bool,
    pub check_failures: u32,
    pub check_successes: u32,
    pub last_check: u8,
    pub last_check_ms: Option<i64>,
    pub consecutive_failures: u32,
    /// Ejected for this long still; `None`: not ejected.
    pub ejected_for_ms: Option<u64>,
    pub ejections: u32,
    pub last_eject_end_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::CheckKind;

    fn check() -> HealthCheck {
        HealthCheck {
            kind: CheckKind::Tcp,
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(50),
            unhealthy_after: 2,
            healthy_after: 3,
        }
    }

    #[test]
    fn checks_mark_down_after_unhealthy_after_and_up_after_healthy_after() {
        let t = TargetState::default();
        let c = check();
        assert!(t.is_available(0), "a new target counts as healthy");
        assert!(t.begin_check());
        assert!(!t.begin_check(), "one check in flight at most");
        assert_eq!(t.end_check(false, &c, 1), Change::None);
        assert!(t.begin_check());
        assert_eq!(t.end_check(false, &c, 2), Change::Down);
        assert!(!t.is_available(3));
        for (i, want) in [Change::None, Change::None, Change::Up]
            .into_iter()
            .enumerate()
        {
            assert!(t.begin_check());
            assert_eq!(t.end_check(true, &c, 4 + i as u64), want);
        }
        assert!(t.is_available(10));
    }

    #[test]
    fn ejection_doubles_up_to_ten_times() {
        let t = TargetState::default();
        let o = Outlier {
            consecutive_failures: 2,
            eject: Duration::from_millis(100),
            max_ejected_percent: 100,
        };
        let mut now = 0;
        let mut times = Vec::new();
        for _ in 0..6 {
            assert_eq!(t.record(Attempt::Failure, Some(&o), now), None);
            let e = t.record(Attempt::Failure, Some(&o), now).expect("ejects");
            assert!(t.eject(e, now));
            assert!(!t.is_available(now));
            times.push(e.time.as_millis());
            now += e.time.as_millis() as u64;
            assert!(t.expire_ejection(now));
            assert!(t.is_available(now));
        }
        assert_eq!(times, vec![100, 200, 400, 800, 1000, 1000]);
        // In long enough (10 times eject), the row starts again.
        now += 1001;
        t.record(Attempt::Failure, Some(&o), now);
        let e = t.record(Attempt::Failure, Some(&o), now).expect("ejects");
        assert_eq!(e.time.as_millis(), 100);
        // A success resets the consecutive count.
        t.record(Attempt::Failure, Some(&o), now);
        t.record(Attempt::Success, Some(&o), now);
        assert_eq!(t.record(Attempt::Failure, Some(&o), now), None);
    }

    #[test]
    fn an_ejected_unhealthy_target_keeps_its_state_and_what_is_left_of_its_ejection() {
        let outlier = Outlier {
            consecutive_failures: 1,
            eject: Duration::from_secs(30),
            max_ejected_percent: 100,
        };
        let old = TargetState::default();
        let e = old
            .record(Attempt::Failure, Some(&outlier), 0)
            .expect("ejection");
        // Ejected at 2_000 for 30 s on the old clock.
        assert!(old.eject(e, 2_000));
        assert_eq!(old.end_check(false, &check(), 1_000), Change::None);
        assert_eq!(old.end_check(false, &check(), 1_100), Change::Down);
        let r = old.export(12_000);
        assert_eq!(r.ejected_for_ms, Some(20_000));
        assert!(!r.checks_healthy);
        assert_eq!(r.last_check_ms, Some(-10_900));

        // Taken 500 ms later by a process whose clock reads 100.
        let new = TargetState::default();
        new.restore(&r, 500, 100);
        assert!(!new.checks_healthy());
        assert_eq!(new.ejected_until(), Some(100 + 19_500));
        assert!(!new.is_available(100 + 19_499));
        assert_eq!(new.export(100).ejected_for_ms, Some(19_500));
        // Not healthy until `healthy_after` successful checks, as in the old process.
        assert_eq!(new.end_check(true, &check(), 200), Change::None);
        // An ejection that ran out meanwhile is over.
        let late = TargetState::default();
        late.restore(&r, 25_000, 100);
        assert_eq!(late.ejected_until(), None);
    }
}
