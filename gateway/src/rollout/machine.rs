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

/// What the gates' evaluation does to a rollout; `None` = nothing changes.
pub fn next(plan: &Plan, s: &RolloutState, e: &Evaluation, now_ms: u64) -> Option<Next> {
    let judged = matches!(
        s.state,
        Phase::Progressing | Phase::WaitingForTraffic | Phase::AwaitingApproval
    );
    if judged && s.step > 0 {
        if let Some(v) = e.breach() {
            let why = Some(e.describe(v));
            return Some(match plan.on_failure {
                OnFailure::Rollback => Next::Apply(0, Phase::Failed, why),
                OnFailure::Pause => Next::Set(Phase::Paused, why),
            });
        }
    }
    let want = match s.state {
        Phase::Pending => advance(plan, 0),
        Phase::Progressing | Phase::WaitingForTraffic => {
            if !e.enough_traffic {
                Next::Set(Phase::WaitingForTraffic, None)
            } else if now_ms.saturating_sub(s.step_started_ms) >= plan.step_ms {
                advance(plan, s.step)
            } else {
                Next::Set(Phase::Progressing, None)
            }
        }
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
}
