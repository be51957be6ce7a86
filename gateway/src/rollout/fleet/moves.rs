//! What a fleet's rollout writes, decided without I/O: the driver's judgement of the fleet's
//! window (in a shadow stage, of the fleet's tally of the canary's answers to the copies), a
//! control's move, and the judgement a gateway makes alone on its own window when it cannot
//! reach etcd. The state machine is the one a single gateway runs
//! ([`machine`](super::super::machine), [`shadow`](super::super::shadow)); only where its
//! moves go differs.

use super::super::judge::{judge, Evaluation};
use super::super::machine::{next, Next};
use super::super::plan::{OnFailure, Plan};
use super::super::prometheus::verdict::PromVerdict;
use super::super::shadow;
use super::super::state::{MovedBy, Phase, RolloutState};
use super::record::StepRecord;
use super::sum::Sum;

/// What a move writes: the rollout's new state, and the step's record when it changes the
/// route's weights (in the same transaction: one revision).
#[derive(Debug, Clone)]
pub struct Written {
    pub state: RolloutState,
    pub step: Option<StepRecord>,
}

/// Who makes a move, as recorded with it.
#[derive(Debug, Clone)]
pub struct Mover {
    pub by: MovedBy,
    /// The gateway that writes it.
    pub gateway: String,
    pub identity: Option<String>,
    pub client: Option<String>,
}

/// The phases whose gates are judged (and whose figures are published).
pub fn judged(phase: Phase) -> bool {
    phase.is_judged()
}

/// Carries out `n` on the state `s` of `plan`'s rollout at `now_ms`.
pub fn carry_out(plan: &Plan, s: &RolloutState, n: Next, who: &Mover, now_ms: u64) -> Written {
    let mut state = s.clone();
    match n {
        Next::Set(phase, reason) => {
            if phase == Phase::Progressing && s.state == Phase::Paused {
                state.step_started_ms = now_ms;
            }
            state.moved(phase, who.by, reason);
            Written { state, step: None }
        }
        Next::Apply(step, phase, reason) => {
            let share = plan.share(step);
            state.step = step;
            state.share = Some(share);
            state.shadow = phase == Phase::Shadowing;
            state.step_started_ms = now_ms;
            state.moved(phase, who.by, reason.clone());
            let record = StepRecord {
                plan: plan.fingerprint.clone(),
                step,
                share,
                weights: plan.weights(share),
                state: phase,
                by: who.by,
                reason,
                gateway: who.gateway.clone(),
                identity: who.identity.clone(),
                client: who.client.clone(),
            };
            Written {
                state,
                step: Some(record),
            }
        }
    }
}

/// A new rollout of `plan` (or one whose plan changed): pending, from the table's weights.
pub fn start(plan: &Plan, now_ms: u64) -> Written {
    let state = RolloutState::new(
        &plan.route,
        plan.canary_group(),
        &plan.fingerprint,
        MovedBy::Etcd,
        now_ms,
    );
    Written { state, step: None }
}

/// The fleet's evaluation of a rollout in state `s` at `now_ms`: in the shadow stage, the
/// stage's gates on the summed tally of the canary's answers to every gateway's copies, over
/// the stage so far (as one gateway judges its own, [`shadow::judge`]); otherwise the plan's
/// gates on the summed window.
pub fn evaluate(plan: &Plan, s: &RolloutState, sum: &Sum, now_ms: u64) -> Evaluation {
    match (&plan.shadow, s.shadow) {
        (Some(stage), true) => {
            let span = shadow::span(s.step_started_ms, now_ms / 1000);
            shadow::judge(stage, plan.canary_group(), &sum.shadow, span)
        }
        _ => judge(&plan.gates, &sum.figures, plan.canary),
    }
}

/// Whether `n` takes the rollout in state `s` further: a later step, success, or out of the
/// shadow stage other than by a failure or a pause.
fn promotes(s: &RolloutState, n: &Next) -> bool {
    match n {
        Next::Apply(step, phase, _) => {
            *step > s.step || (s.shadow && !matches!(phase, Phase::Failed | Phase::Shadowing))
        }
        Next::Set(phase, _) => *phase == Phase::Succeeded,
    }
}

/// The driver's judgement of one rollout: `state` as etcd holds it (absent, or of another
/// plan: the rollout starts), `sum` the fleet's window of its step, judged. A gateway that took
/// the canary to 0 on its own while etcd was away is heard: the fleet fails (or pauses, as
/// `on_failure` says) when the breach holds over the fleet's window, and pauses otherwise, so
/// that nothing promotes past a gateway that saw its canary fail until a person looks.
/// `missing`: live gateways without a fresh window of the step — nothing promotes before
/// every live gateway is heard (one back from an etcd outage may bring a breach), neither out
/// of a shadow stage (each gateway's copies count).
pub fn drive(
    plan: &Plan,
    state: Option<&RolloutState>,
    sum: &Sum,
    missing: &[String],
    who: &Mover,
    now_ms: u64,
    prometheus: Vec<PromVerdict>,
) -> (Option<Evaluation>, Option<Written>) {
    let s = match state {
        Some(s) if s.fingerprint == plan.fingerprint => s,
        _ => return (None, Some(start(plan, now_ms))),
    };
    let mut e = evaluate(plan, s, sum, now_ms);
    if e.shadow.is_none() {
        e.prometheus = prometheus; // a shadow stage is judged on the copies alone
    }
    let mut n = next(plan, s, &e, now_ms);
    let heard = s.step > 0 || s.shadow;
    if n.as_ref().is_some_and(|n| promotes(s, n)) && heard && !missing.is_empty() {
        n = None;
    }
    let failing = matches!(
        &n,
        Some(Next::Apply(0, Phase::Failed, _) | Next::Set(Phase::Paused, _))
    );
    if judged(s.state) && s.step > 0 && !failing {
        if let Some((gateway, abort)) = sum.local_aborts().next() {
            let why = format!(
                "gateway {gateway} took the canary to 0 on its own while etcd was away ({}); the breach does not hold over the fleet's window: resume applies step {} again everywhere, abort takes the canary out",
                abort.reason, s.step
            );
            n = Some(Next::Set(Phase::Paused, Some(why)));
        }
    }
    let written = n.map(|n| carry_out(plan, s, n, who, now_ms));
    (Some(e), written)
}

/// A gateway's judgement of its own window while it cannot reach etcd: `Some` with the
/// evaluation when the canary breaches a gate on a judged step, with `min_requests` shared out
/// among the `gateways` it last saw (each sees about its part of the traffic).
pub fn breached_alone(
    plan: &Plan,
    s: &RolloutState,
    own: &[(String, crate::telemetry::window::Figures)],
    gateways: usize,
) -> Option<Evaluation> {
    if !judged(s.state) || s.step == 0 || s.share == Some(0) || s.fingerprint != plan.fingerprint {
        return None;
    }
    let mut gates = plan.gates.clone();
    gates.min_requests = gates.min_requests.div_ceil(gateways.max(1) as u64).max(1);
    let e = judge(&gates, own, plan.canary);
    e.breach().is_some().then_some(e)
}

/// Whether a breach judged alone takes the canary to 0 (`on_failure: rollback`); with `pause`
/// the gateway holds its step, as the fleet would.
pub fn aborts_alone(plan: &Plan) -> bool {
    plan.on_failure == OnFailure::Rollback
}

#[cfg(test)]
mod tests {
    use super::super::record::{Counts, FiguresRecord, LocalAbort};
    use super::super::sum::sum;
    use super::*;
    use crate::rollout::plan::Gates;

    fn plan() -> Plan {
        let p = crate::rollout::plan::test_plan();
        Plan {
            gates: Gates {
                min_requests: 30,
                ..p.gates
            },
            fingerprint: "p1".into(),
            ..p
        }
    }

    pub(super) fn driver() -> Mover {
        Mover {
            by: MovedBy::Rollout,
            gateway: "gw1".into(),
            identity: None,
            client: None,
        }
    }

    pub(super) fn at(state: Phase, step: usize) -> RolloutState {
        let mut s = RolloutState::new("shop", "canary", "p1", MovedBy::Etcd, 0);
        s.state = state;
        s.step = step;
        s.share = Some(plan().share(step));
        s.step_started_ms = 10_000;
        s
    }

    pub(super) fn window(gateway: &str, canary: (u64, u64), abort: bool) -> FiguresRecord {
        FiguresRecord {
            gateway: gateway.into(),
            plan: "p1".into(),
            step_started_ms: 10_000,
            from: 10,
            to: 11,
            groups: vec![
                Counts {
                    requests: 100,
                    errors: 0,
                    buckets: vec![100],
                },
                Counts {
                    requests: canary.0,
                    errors: canary.1,
                    buckets: vec![canary.0],
                },
            ],
            local_abort: abort.then(|| LocalAbort {
                at: String::new(),
                step_started_ms: 10_000,
                reason: "gate error_rate breached".into(),
                version: "41.1".into(),
            }),
            shadow: None,
        }
    }

    #[test]
    fn a_new_or_replanned_rollout_starts_pending() {
        let p = plan();
        let (e, w) = drive(&p, None, &Sum::default(), &[], &driver(), 5, vec![]);
        assert!(e.is_none());
        let w = w.expect("a start");
        assert_eq!(
            (w.state.state, w.state.fingerprint.as_str()),
            (Phase::Pending, "p1")
        );
        let mut old = at(Phase::Succeeded, 3);
        old.fingerprint = "p0".into();
        let (_, w) = drive(&p, Some(&old), &Sum::default(), &[], &driver(), 5, vec![]);
        assert_eq!(w.map(|w| w.state.state), Some(Phase::Pending));
    }

    #[test]
    fn the_driver_promotes_on_the_fleet_s_sum_and_writes_the_step_with_the_state() {
        let p = plan();
        let s = at(Phase::Progressing, 1);
        // 10 + 10 + 10 canary requests through three gateways: 30, enough over the fleet.
        let windows = [
            window("gw1", (10, 0), false),
            window("gw2", (10, 0), false),
            window("gw3", (10, 0), false),
        ];
        let (e, w) = drive(
            &p,
            Some(&s),
            &sum(&p, 10_000, &windows),
            &[],
            &driver(),
            11_000,
            vec![],
        );
        assert!(e.is_some_and(|e| e.enough_traffic));
        let w = w.expect("a step");
        let step = w.step.expect("the weights move");
        assert_eq!(
            (step.step, step.share, step.weights.clone()),
            (2, 50, p.weights(50))
        );
        assert_eq!(
            (w.state.step, w.state.share, w.state.step_started_ms),
            (2, Some(50), 11_000)
        );
        // One gateway's 10 alone: not enough, whatever the time.
        let (_, w) = drive(
            &p,
            Some(&s),
            &sum(&p, 10_000, &windows[..1]),
            &[],
            &driver(),
            99_000,
            vec![],
        );
        assert_eq!(
            w.map(|w| (w.state.state, w.step.is_none())),
            Some((Phase::WaitingForTraffic, true))
        );
    }

    #[test]
    fn nothing_promotes_before_every_live_gateway_is_heard_but_a_breach_still_fails() {
        let p = plan();
        let s = at(Phase::Progressing, 1);
        let healthy = [window("gw1", (40, 0), false)];
        let missing = vec!["gw2".to_string()];
        let (_, w) = drive(
            &p,
            Some(&s),
            &sum(&p, 10_000, &healthy),
            &missing,
            &driver(),
            99_000,
            vec![],
        );
        assert!(w.is_none());
        let failing = [window("gw1", (40, 20), false)];
        let (_, w) = drive(
            &p,
            Some(&s),
            &sum(&p, 10_000, &failing),
            &missing,
            &driver(),
            10_100,
            vec![],
        );
        assert_eq!(w.map(|w| w.state.state), Some(Phase::Failed));
    }

    #[test]
    fn a_breach_over_the_fleet_fails_it_and_a_local_abort_alone_pauses_it() {
        let p = plan();
        let s = at(Phase::Progressing, 1);
        let windows = [window("gw1", (20, 10), true), window("gw2", (20, 0), false)];
        let (_, w) = drive(
            &p,
            Some(&s),
            &sum(&p, 10_000, &windows),
            &[],
            &driver(),
            10_500,
            vec![],
        );
        let w = w.expect("an abort");
        assert_eq!(w.state.state, Phase::Failed);
        assert_eq!(w.step.map(|s| (s.step, s.share)), Some((0, 0)));
        let windows = [window("gw1", (20, 1), true), window("gw2", (20, 0), false)];
        let (_, w) = drive(
            &p,
            Some(&s),
            &sum(&p, 10_000, &windows),
            &[],
            &driver(),
            99_000,
            vec![],
        );
        let w = w.expect("a pause");
        assert_eq!((w.state.state, w.step.is_none()), (Phase::Paused, true));
        assert_reason(
            &w,
            "gateway gw1 took the canary to 0 on its own while etcd was away",
        );
    }

    /// The written state's last move says why, starting with `prefix`.
    pub(super) fn assert_reason(w: &Written, prefix: &str) {
        let why = w.state.last_reason().unwrap_or_default();
        assert!(why.starts_with(prefix), "{why}");
    }

    #[test]
    fn alone_a_gateway_judges_its_part_of_min_requests() {
        let p = plan();
        let s = at(Phase::Progressing, 1);
        let own = sum(&p, 10_000, &[window("gw1", (10, 5), false)]).figures;
        // 30 over three gateways: 10 each.
        assert!(breached_alone(&p, &s, &own, 3).is_some());
        assert!(breached_alone(&p, &s, &own, 1).is_none());
        assert!(breached_alone(&p, &at(Phase::Paused, 1), &own, 3).is_none());
        assert!(breached_alone(&p, &at(Phase::Failed, 0), &own, 3).is_none());
    }

    #[test]
    fn a_control_s_step_is_recorded_with_who_made_it() {
        let p = plan();
        let who = Mover {
            by: MovedBy::Control,
            gateway: "gw2".into(),
            identity: Some("ops".into()),
            client: Some("10.0.0.9".into()),
        };
        let w = carry_out(
            &p,
            &at(Phase::Progressing, 1),
            Next::Apply(0, Phase::Aborted, Some("aborted by control".into())),
            &who,
            12_000,
        );
        let step = w.step.expect("weights");
        assert_eq!(
            (
                step.identity.as_deref(),
                step.gateway.as_str(),
                step.weights.clone()
            ),
            (Some("ops"), "gw2", p.weights(0))
        );
        let w = carry_out(
            &p,
            &at(Phase::Paused, 1),
            Next::Set(Phase::Progressing, None),
            &who,
            12_000,
        );
        assert_eq!((w.state.step_started_ms, w.step.is_none()), (12_000, true));
    }
}

#[cfg(test)]
#[path = "moves_shadow_tests.rs"]
mod shadow_tests;
