//! The judgement of a new process during an upgrade's watch: from what the old process observes
//! (is the new one alive, what its `/readyz` answered), whether to keep watching, keep the new
//! process, or revert. Pure: the caller probes and passes the time since the handover.

use crate::config::settings::upgrade::UpgradeSettings;
use std::fmt;
use std::time::Duration;

/// Probes in a row without an answer from the new process before it counts as stopped.
pub const UNANSWERED_IN_A_ROW: u32 = 3;

/// How long a new process may take to answer `/readyz` ready at all, when the watch is shorter:
/// a short watch is not a short start (a loaded machine, a large table). A new process is kept
/// only once it was seen ready.
pub const READY_WITHIN: Duration = Duration::from_secs(30);

/// One `/readyz` probe of the admin address, as the old process saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Answered by a process other than the old one: its pid, whether ready, and its answers
    /// so far (requests, failed).
    Answered {
        pid: u32,
        ready: bool,
        requests: u64,
        failed: u64,
    },
    /// Answered by the old process itself (Pingora keeps it accepting for 5 s after the
    /// handover): says nothing about the new one.
    ByOld,
    /// No answer (refused, timed out, not HTTP): why.
    Unanswered(String),
}

/// Why the old binary takes the sockets back.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Exited {
        pid: u32,
        after: Duration,
    },
    NeverReady {
        within: Duration,
    },
    StoppedAnswering {
        pid: u32,
        last: String,
        after: Duration,
    },
    ErrorRate {
        pid: u32,
        failed: u64,
        requests: u64,
        max: f64,
        after: Duration,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Exited { pid, after } => {
                write!(f, "new process {pid} exited {after:.1?} after the handover")
            }
            Reason::NeverReady { within } => write!(
                f,
                "no new process answered /readyz within {within:.1?} after the handover"
            ),
            Reason::StoppedAnswering { pid, last, after } => write!(
                f,
                "new process {pid} stopped answering /readyz ({UNANSWERED_IN_A_ROW} probes in a row; last: {last}) {after:.1?} after the handover"
            ),
            Reason::ErrorRate {
                pid,
                failed,
                requests,
                max,
                after,
            } => write!(
                f,
                "new process {pid} failed {failed} of {requests} requests ({:.1}% > {:.1}%) within {after:.1?} after the handover",
                100.0 * *failed as f64 / (*requests).max(1) as f64,
                100.0 * max
            ),
        }
    }
}

/// What to do after an observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Watching,
    /// The watch is over and the new process passed it.
    Keep,
    Revert(Reason),
}

/// The state of one watch.
#[derive(Debug, Clone)]
pub struct Watch {
    settings: UpgradeSettings,
    /// The new process, once known (its first answer, or the pid file).
    pub new_pid: Option<u32>,
    /// Its answers at its first ready answer: what it answered since is judged.
    base: Option<(u64, u64)>,
    /// Its answers at the latest probe, since `base`.
    pub seen: (u64, u64),
    unanswered: u32,
    ready_once: bool,
}

impl Watch {
    pub fn new(settings: UpgradeSettings) -> Watch {
        Watch {
            settings,
            new_pid: None,
            base: None,
            seen: (0, 0),
            unanswered: 0,
            ready_once: false,
        }
    }

    /// A probe without a ready answer: counts once the new process was ready (before, it is
    /// still starting), and reverts at the third in a row.
    fn miss(&mut self, at: Duration, why: String) -> Option<Verdict> {
        if !self.ready_once {
            return None;
        }
        self.unanswered += 1;
        (self.unanswered >= UNANSWERED_IN_A_ROW).then(|| {
            Verdict::Revert(Reason::StoppedAnswering {
                pid: self.new_pid.unwrap_or_default(),
                last: why,
                after: at,
            })
        })
    }

    /// Whether the new process answered ready at least once.
    pub fn was_ready(&self) -> bool {
        self.ready_once
    }

    /// Learns the new process's pid from elsewhere (the pid file it wrote).
    pub fn named(&mut self, pid: u32) {
        self.new_pid.get_or_insert(pid);
    }

    /// One observation, `at` after the handover: whether the new process (when known) is
    /// alive, and what the probe got.
    pub fn observe(&mut self, at: Duration, new_alive: Option<bool>, probe: Probe) -> Verdict {
        if let (Some(pid), Some(false)) = (self.new_pid, new_alive) {
            return Verdict::Revert(Reason::Exited { pid, after: at });
        }
        match probe {
            Probe::Answered {
                pid,
                ready,
                requests,
                failed,
            } if Some(pid) == self.new_pid || (self.new_pid.is_none() && ready) => {
                self.new_pid = Some(pid);
                if ready {
                    self.unanswered = 0;
                    self.ready_once = true;
                    let base = *self.base.get_or_insert((requests, failed));
                    self.seen = (
                        requests.saturating_sub(base.0),
                        failed.saturating_sub(base.1),
                    );
                } else if let Some(r) = self.miss(at, "answered not ready".into()) {
                    return r;
                }
            }
            // Another pid: a process before the new one still draining (it answers, never
            // ready) or one after it; not ours to judge, nothing learnt.
            Probe::Answered { .. } | Probe::ByOld => {}
            Probe::Unanswered(why) => {
                if let Some(r) = self.miss(at, why) {
                    return r;
                }
            }
        }
        let (requests, failed) = self.seen;
        if requests >= self.settings.min_requests
            && failed as f64 > self.settings.max_error_rate * requests as f64
        {
            return Verdict::Revert(Reason::ErrorRate {
                pid: self.new_pid.unwrap_or_default(),
                failed,
                requests,
                max: self.settings.max_error_rate,
                after: at,
            });
        }
        let ready_within = self.settings.watch.max(READY_WITHIN);
        match (
            self.ready_once,
            at >= self.settings.watch,
            at >= ready_within,
        ) {
            (true, true, _) => Verdict::Keep,
            (false, _, true) => Verdict::Revert(Reason::NeverReady {
                within: ready_within,
            }),
            _ => Verdict::Watching,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a revert says, as the audit line and the command print it.
    fn reason(v: Verdict) -> String {
        match v {
            Verdict::Revert(r) => r.to_string(),
            other => panic!("expected a revert, got {other:?}"),
        }
    }

    fn settings() -> UpgradeSettings {
        UpgradeSettings {
            watch: Duration::from_secs(10),
            max_error_rate: 0.1,
            min_requests: 20,
        }
    }

    fn ready(pid: u32, requests: u64, failed: u64) -> Probe {
        Probe::Answered {
            pid,
            ready: true,
            requests,
            failed,
        }
    }

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn a_healthy_new_process_is_kept_when_the_watch_ends() {
        let mut w = Watch::new(settings());
        assert_eq!(w.observe(s(0.1), None, Probe::ByOld), Verdict::Watching);
        assert_eq!(w.observe(s(0.5), None, ready(7, 0, 0)), Verdict::Watching);
        assert_eq!(
            w.observe(s(5.0), Some(true), ready(7, 500, 10)),
            Verdict::Watching
        );
        // The old process answering (its 5 s of accepting) is not a failure of the new one.
        assert_eq!(
            w.observe(s(5.1), Some(true), Probe::ByOld),
            Verdict::Watching
        );
        assert_eq!(
            w.observe(s(10.0), Some(true), ready(7, 900, 20)),
            Verdict::Keep
        );
        assert_eq!(w.seen, (900, 20));
    }

    #[test]
    fn an_exit_reverts_at_once_with_the_time() {
        let mut w = Watch::new(settings());
        w.observe(s(0.4), None, ready(7, 0, 0));
        assert_eq!(
            w.observe(s(2.0), Some(false), Probe::Unanswered("refused".into())),
            Verdict::Revert(Reason::Exited {
                pid: 7,
                after: s(2.0)
            })
        );
        // Known from the pid file before it ever answered.
        let mut w = Watch::new(settings());
        w.named(8);
        let v = w.observe(s(0.3), Some(false), Probe::Unanswered("refused".into()));
        assert_eq!(
            v,
            Verdict::Revert(Reason::Exited {
                pid: 8,
                after: s(0.3)
            })
        );
        assert_eq!(reason(v), "new process 8 exited 300.0ms after the handover");
    }

    #[test]
    fn three_unanswered_probes_in_a_row_after_ready_revert_and_fewer_do_not() {
        let mut w = Watch::new(settings());
        // Before the first ready answer, a missing answer is a slow start.
        for i in 0..5 {
            assert_eq!(
                w.observe(s(0.1 * i as f64), None, Probe::Unanswered("refused".into())),
                Verdict::Watching
            );
        }
        w.observe(s(1.0), Some(true), ready(7, 0, 0));
        w.observe(s(1.2), Some(true), Probe::Unanswered("timed out".into()));
        w.observe(s(1.4), Some(true), Probe::Unanswered("timed out".into()));
        assert_eq!(
            w.observe(s(1.6), Some(true), ready(7, 3, 0)),
            Verdict::Watching
        );
        w.observe(s(1.8), Some(true), Probe::Unanswered("timed out".into()));
        w.observe(s(2.0), Some(true), Probe::Unanswered("timed out".into()));
        let v = w.observe(s(2.2), Some(true), Probe::Unanswered("timed out".into()));
        assert_eq!(
            v,
            Verdict::Revert(Reason::StoppedAnswering {
                pid: 7,
                last: "timed out".into(),
                after: s(2.2)
            })
        );
    }

    #[test]
    fn the_error_rate_counts_from_the_first_ready_answer_and_needs_min_requests() {
        let mut w = Watch::new(settings());
        // Counts before the first ready answer (the old process's, carried over) are the base.
        w.observe(s(0.5), Some(true), ready(7, 1000, 900));
        // 5 of 10 failed: above the rate, but fewer than min_requests.
        assert_eq!(
            w.observe(s(1.0), Some(true), ready(7, 1010, 905)),
            Verdict::Watching
        );
        // 2 of 20: exactly 10%, not more.
        assert_eq!(
            w.observe(s(1.5), Some(true), ready(7, 1020, 902)),
            Verdict::Watching
        );
        let v = w.observe(s(2.0), Some(true), ready(7, 1030, 904));
        assert_eq!(
            v,
            Verdict::Revert(Reason::ErrorRate {
                pid: 7,
                failed: 4,
                requests: 30,
                max: 0.1,
                after: s(2.0)
            })
        );
        assert_eq!(
            reason(v),
            "new process 7 failed 4 of 30 requests (13.3% > 10.0%) within 2.0s after the handover"
        );
    }

    #[test]
    fn a_draining_predecessor_answering_is_not_taken_for_the_new_process() {
        // Back-to-back upgrades: the process before the watcher still drains and answers
        // `/readyz`, not ready; the new process is the one that answers ready.
        let mut w = Watch::new(settings());
        let draining = Probe::Answered {
            pid: 3,
            ready: false,
            requests: 9,
            failed: 0,
        };
        assert_eq!(w.observe(s(0.2), None, draining.clone()), Verdict::Watching);
        assert_eq!(w.new_pid, None);
        assert_eq!(w.observe(s(0.4), None, ready(7, 0, 0)), Verdict::Watching);
        assert_eq!(w.new_pid, Some(7));
        assert_eq!(w.observe(s(0.6), Some(true), draining), Verdict::Watching);
        assert_eq!(
            w.observe(s(10.0), Some(true), ready(7, 5, 0)),
            Verdict::Keep
        );
    }

    #[test]
    fn a_new_process_never_ready_is_reverted_after_the_start_allowance() {
        let mut w = Watch::new(settings());
        w.named(9);
        let not_ready = Probe::Answered {
            pid: 9,
            ready: false,
            requests: 0,
            failed: 0,
        };
        // The watch is over, but it was never seen ready: not kept yet, not reverted yet.
        assert_eq!(
            w.observe(s(10.0), Some(true), not_ready.clone()),
            Verdict::Watching
        );
        assert_eq!(
            w.observe(READY_WITHIN, Some(true), not_ready),
            Verdict::Revert(Reason::NeverReady {
                within: READY_WITHIN
            })
        );
        // Ready late, after a short watch: kept at its first ready answer.
        let mut w = Watch::new(UpgradeSettings {
            watch: s(3.0),
            ..settings()
        });
        assert_eq!(w.observe(s(3.0), None, Probe::ByOld), Verdict::Watching);
        assert_eq!(w.observe(s(4.5), None, ready(9, 0, 0)), Verdict::Keep);
    }
}
