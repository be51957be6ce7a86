//! The state machine, judged once a second: from a rollout's state, its plan and the gates'
//! evaluation, what happens next. Pure: the controller applies the answer.

use super::judge::Evaluation;
use super::plan::OnFailure;
use super::plan::Plan;
use super::state::{Phase, RolloutState};

#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Move to a state without changing the table.
    Set(Phase, Option<String>),
    /// Apply `step` (0 = canary share 0) and move to the state.
    Apply(usize, Phase, Option<String>),
}

/// The step after `step` (or the next approval to wait for).
pub fn advance(plan: &Plan, step: usize) -> Next {
    let next = step + 1;
    if next > plan.steps.len() {
        return Next::Set(Phase::Succeeded, None);
    }
    let share = plan.share(next);
    if plan.pause_before.contains(&share) {
        return Next::Set(
            Phase::AwaitingApproval,
            Some(format!("step {next} ({share}%) waits for a promote")),
        );
    }
    Next::Apply(next, Phase::Progressing, None)
}

/// The automatic promotion after `step`: [`advance`], asked of `confirm_step` first when the
/// plan has one (a promote by a person is not asked).
pub fn promote(plan: &Plan, step: usize) -> Next {
    match advance(plan, step) {
        Next::Apply(n, _, _) if plan.hooks.confirm_step.is_some() => Next::Set(
            Phase::AwaitingConfirmation,
            Some(format!(
                "step {n} ({}%) waits for confirm_step",
                plan.share(n)
            )),
        ),
        other => other,
    }
}

/// What the gates' evaluation does to a rollout; `None` = nothing changes.
pub fn next(plan: &Plan, s: &RolloutState, e: &Evaluation, now_ms: u64) -> Option<Next> {
    if s.state == Phase::Shadowing {
        return super::shadow::next(plan, s, e, now_ms);
    }
    if s.state.is_judged() && s.step > 0 {
        if let Some((_, why)) = e.failure() {
            return Some(match plan.on_failure {
                OnFailure::Rollback => Next::Apply(0, Phase::Failed, Some(why)),
                OnFailure::Pause => Next::Set(Phase::Paused, Some(why)),
            });
        }
        if let Some(why) = e.held() {
            return Some(Next::Set(Phase::Paused, Some(why)));
        }
    }
    let want = match s.state {
        Phase::Pending => match super::shadow::begin(plan, None) {
            Some(shadow) => shadow,
            None => promote(plan, 0),
        },
        Phase::Progressing | Phase::WaitingForTraffic => {
            let over = now_ms.saturating_sub(s.step_started_ms) >= plan.step_ms;
            if !e.enough_traffic {
                Next::Set(Phase::WaitingForTraffic, None)
            } else if over && e.prometheus_lets_go() {
                promote(plan, s.step)
            } else {
                Next::Set(Phase::Progressing, None)
            }
        }
        Phase::AwaitingConfirmation => match &s.confirmation {
            Some(c) if c.confirmed && c.step == s.step + 1 => match advance(plan, s.step) {
                Next::Apply(n, phase, _) => Next::Apply(
                    n,
                    phase,
                    Some(format!(
                        "confirmed by confirm_step ({})",
                        c.answer.as_deref().unwrap_or("2xx")
                    )),
                ),
                other => other,
            },
            _ => return None,
        },
        _ => return None,
    };
    match &want {
        Next::Set(p, _) if *p == s.state => None,
        _ => Some(want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::judge::Verdict;
    use crate::rollout::prometheus::OnError;

    fn plan() -> Plan {
        Plan {
            pause_before: vec![50],
            ..crate::rollout::plan::test_plan()
        }
    }

    fn eval(enough: bool, ok: bool) -> Evaluation {
        Evaluation {
            at: String::new(),
            window_ms: 1000,
            min_requests: 20,
            latency_percentile: 99.0,
            enough_traffic: enough,
            groups: vec![],
            gates: vec![Verdict {
                gate: "error_rate".into(),
                value: if ok { 0.0 } else { 0.3 },
                limit: 0.05,
                ok,
            }],
            prometheus: vec![],
            shadow: None,
        }
    }

    fn at(state: Phase, step: usize) -> RolloutState {
        let mut s = RolloutState::new("shop", "canary", "f", super::super::state::MovedBy::File, 0);
        s.state = state;
        s.step = step;
        s.step_started_ms = 10_000;
        s
    }

    #[test]
    fn moves() {
        let p = plan();
        let s = at(Phase::Pending, 0);
        assert_eq!(
            next(&p, &s, &eval(false, true), 0),
            Some(Next::Apply(1, Phase::Progressing, None))
        );
        let s = at(Phase::Progressing, 1);
        // Not before step_ms, never without traffic, never on a breach.
        assert_eq!(next(&p, &s, &eval(true, true), 10_500), None);
        assert_eq!(
            next(&p, &s, &eval(false, true), 20_000),
            Some(Next::Set(Phase::WaitingForTraffic, None))
        );
        assert!(matches!(
            next(&p, &s, &eval(true, false), 10_100),
            Some(Next::Apply(0, Phase::Failed, Some(_)))
        ));
        // Too little traffic with bad figures: waits, never fails.
        assert_eq!(
            next(&p, &s, &eval(false, false), 10_100),
            Some(Next::Set(Phase::WaitingForTraffic, None))
        );
        // The next step is 50: approval first.
        assert!(matches!(
            next(&p, &s, &eval(true, true), 11_000),
            Some(Next::Set(Phase::AwaitingApproval, Some(_)))
        ));
        let s = at(Phase::Progressing, 3);
        assert_eq!(
            next(&p, &s, &eval(true, true), 11_000),
            Some(Next::Set(Phase::Succeeded, None))
        );
        for done in [
            Phase::Succeeded,
            Phase::Failed,
            Phase::Aborted,
            Phase::Paused,
        ] {
            assert_eq!(next(&p, &at(done, 2), &eval(true, false), 99_000), None);
        }
        let mut pause = plan();
        pause.on_failure = OnFailure::Pause;
        assert!(matches!(
            next(
                &pause,
                &at(Phase::Progressing, 2),
                &eval(true, false),
                10_100
            ),
            Some(Next::Set(Phase::Paused, Some(_)))
        ));
    }

    #[test]
    fn a_step_is_promoted_once_step_ms_is_over_not_before() {
        let p = plan();
        let s = at(Phase::Progressing, 2);
        assert_eq!(next(&p, &s, &eval(true, true), 10_999), None);
        assert_eq!(
            next(&p, &s, &eval(true, true), 11_000),
            Some(Next::Apply(3, Phase::Progressing, None))
        );
        // A clock behind the step's start (set back) promotes nothing.
        assert_eq!(next(&p, &s, &eval(true, true), 5_000), None);
    }

    #[test]
    fn waiting_for_traffic_ends_when_traffic_comes() {
        let p = plan();
        let s = at(Phase::WaitingForTraffic, 2);
        assert_eq!(next(&p, &s, &eval(false, true), 99_000), None);
        assert_eq!(
            next(&p, &s, &eval(true, true), 10_500),
            Some(Next::Set(Phase::Progressing, None))
        );
        assert_eq!(
            next(&p, &s, &eval(true, true), 11_000),
            Some(Next::Apply(3, Phase::Progressing, None))
        );
        assert!(matches!(
            next(&p, &s, &eval(true, false), 10_500),
            Some(Next::Apply(0, Phase::Failed, Some(_)))
        ));
    }

    #[test]
    fn awaiting_approval_is_judged_but_never_promoted_by_the_gates() {
        let p = plan();
        let s = at(Phase::AwaitingApproval, 1);
        assert_eq!(next(&p, &s, &eval(true, true), 99_000), None);
        assert!(matches!(
            next(&p, &s, &eval(true, false), 99_000),
            Some(Next::Apply(0, Phase::Failed, Some(_)))
        ));
    }

    #[test]
    fn before_its_first_step_a_rollout_is_not_judged() {
        let p = plan();
        assert_eq!(
            next(&p, &at(Phase::Pending, 0), &eval(true, false), 0),
            Some(Next::Apply(1, Phase::Progressing, None))
        );
        // A first step in pause_before waits for a promote.
        let mut first = plan();
        first.pause_before = vec![10];
        assert!(matches!(
            next(&first, &at(Phase::Pending, 0), &eval(true, true), 0),
            Some(Next::Set(Phase::AwaitingApproval, Some(_)))
        ));
    }

    #[test]
    fn advance_goes_step_by_step_to_success() {
        let p = plan();
        assert_eq!(advance(&p, 0), Next::Apply(1, Phase::Progressing, None));
        assert_eq!(
            advance(&p, 1),
            Next::Set(
                Phase::AwaitingApproval,
                Some("step 2 (50%) waits for a promote".into())
            )
        );
        assert_eq!(advance(&p, 2), Next::Apply(3, Phase::Progressing, None));
        assert_eq!(advance(&p, 3), Next::Set(Phase::Succeeded, None));
    }

    fn confirming() -> Plan {
        let mut p = plan();
        p.pause_before = vec![];
        p.hooks.confirm_step = Some(crate::rollout::hooks::ConfirmStep {
            url: crate::rollout::hooks::HookUrl::parse("http://127.0.0.1:1/c").expect("url"),
            timeout_ms: 1000,
        });
        p
    }

    #[test]
    fn with_confirm_step_an_automatic_promotion_waits_for_a_2xx() {
        use crate::rollout::hooks::confirm::{Answer, Confirmation};
        let p = confirming();
        let s = at(Phase::Progressing, 1);
        let want = Next::Set(
            Phase::AwaitingConfirmation,
            Some("step 2 (50%) waits for confirm_step".into()),
        );
        assert_eq!(next(&p, &s, &eval(true, true), 11_000), Some(want));
        // Waiting: not promoted until confirmed, whatever the time.
        let mut s = at(Phase::AwaitingConfirmation, 1);
        s.confirmation = Some(Confirmation::new(2));
        assert_eq!(next(&p, &s, &eval(true, true), 99_000), None);
        if let Some(c) = s.confirmation.as_mut() {
            c.record(&Answer::Status(403), 1, "t".into());
        }
        assert_eq!(next(&p, &s, &eval(true, true), 99_000), None);
        // A breach while waiting fails it at once: an abort never waits for the webhook.
        assert!(matches!(
            next(&p, &s, &eval(true, false), 99_000),
            Some(Next::Apply(0, Phase::Failed, Some(_)))
        ));
        if let Some(c) = s.confirmation.as_mut() {
            c.record(&Answer::Status(200), 2, "t".into());
        }
        assert_eq!(
            next(&p, &s, &eval(true, true), 99_000),
            Some(Next::Apply(
                2,
                Phase::Progressing,
                Some("confirmed by confirm_step (HTTP 200)".into())
            ))
        );
        // A confirmation of another step does not count.
        s.step = 2;
        assert_eq!(next(&p, &s, &eval(true, true), 99_000), None);
        // The last step's success is not a promotion: not asked.
        let s = at(Phase::Progressing, 3);
        assert_eq!(
            next(&p, &s, &eval(true, true), 11_000),
            Some(Next::Set(Phase::Succeeded, None))
        );
    }

    fn with_prometheus(value: Result<f64, String>, at_ms: u64, on_error: OnError) -> Evaluation {
        let mut e = eval(true, true);
        e.prometheus = crate::rollout::prometheus::verdict::verdicts(
            &[crate::rollout::prometheus::PromGate {
                name: "checkout".into(),
                url: crate::rollout::hooks::HookUrl::parse("http://127.0.0.1:9090").expect("url"),
                query: "q".into(),
                max: Some(0.5),
                min: None,
                interval_ms: 1000,
                on_error,
            }],
            |_| {
                Some(crate::rollout::prometheus::readings::Reading {
                    query: "q".into(),
                    url: "http://127.0.0.1:9090".into(),
                    at_ms,
                    at: "t".into(),
                    value: value.clone(),
                })
            },
            10_000,
        );
        e
    }

    #[test]
    fn a_step_is_promoted_only_on_a_prometheus_value_of_its_own() {
        let mut p = plan();
        p.pause_before = vec![];
        let s = at(Phase::Progressing, 1);
        let promoted = Some(Next::Apply(2, Phase::Progressing, None));
        // A value from before the step began: waits.
        let stale = with_prometheus(Ok(0.1), 9_999, OnError::Pause);
        assert_eq!(next(&p, &s, &stale, 11_000), None);
        // ... and does not fail it either.
        let stale_bad = with_prometheus(Ok(0.9), 9_999, OnError::Pause);
        assert_eq!(next(&p, &s, &stale_bad, 11_000), None);
        assert_eq!(
            next(
                &p,
                &s,
                &with_prometheus(Ok(0.1), 10_000, OnError::Pause),
                11_000
            ),
            promoted
        );
        assert!(matches!(
            next(&p, &s, &with_prometheus(Ok(0.9), 10_500, OnError::Pause), 10_600),
            Some(Next::Apply(0, Phase::Failed, Some(why))) if why.starts_with("prometheus gate checkout breached: 0.9")
        ));
        let down = || Err("query \"q\": connect to 127.0.0.1:9090: refused".to_string());
        assert!(matches!(
            next(
                &p,
                &s,
                &with_prometheus(down(), 10_500, OnError::Pause),
                10_600
            ),
            Some(Next::Set(Phase::Paused, Some(_)))
        ));
        assert!(matches!(
            next(
                &p,
                &s,
                &with_prometheus(down(), 10_500, OnError::Fail),
                10_600
            ),
            Some(Next::Apply(0, Phase::Failed, Some(_)))
        ));
        assert_eq!(
            next(
                &p,
                &s,
                &with_prometheus(down(), 10_500, OnError::Ignore),
                10_600
            ),
            None
        );
        assert_eq!(
            next(
                &p,
                &s,
                &with_prometheus(down(), 10_500, OnError::Ignore),
                11_000
            ),
            promoted
        );
        // Prometheus gates count with too little traffic of the gateway's own too.
        let mut quiet = with_prometheus(Ok(0.9), 10_500, OnError::Pause);
        quiet.enough_traffic = false;
        assert!(matches!(
            next(&p, &s, &quiet, 10_600),
            Some(Next::Apply(0, Phase::Failed, Some(_)))
        ));
    }
}
