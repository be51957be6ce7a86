//! The shadow stage's decisions, without traffic or a clock.

use super::*;
use crate::mirror::tally::ShadowCounts;
use crate::rollout::controls::{decide, Control};
use crate::rollout::state::MovedBy;
use crate::telemetry::window::Window;

fn plan() -> Plan {
    Plan {
        shadow: Some({
            let mut stage = Shadow::for_tests(100_000, 5_000, 20);
            stage.gates.max_latency_ms = Some(500);
            stage.gates.max_mismatch_rate = Some(0.1);
            stage
        }),
        ..crate::rollout::plan::test_plan()
    }
}

/// `copies` answered in 20 ms, `errors` of them failed, `compared` of them compared of which
/// `mismatches` differed.
fn counts(copies: u64, errors: u64, compared: u64, mismatches: u64) -> ShadowCounts {
    let w = Window::new();
    for i in 0..copies {
        w.record_at(1, i < errors, 20);
    }
    ShadowCounts {
        answers: w.snapshot(1, 1),
        compared,
        mismatches,
    }
}

fn shadowing(started_ms: u64) -> RolloutState {
    let mut s = RolloutState::new("shop", "canary", "f", MovedBy::File, 0);
    s.state = Phase::Shadowing;
    s.share = Some(0);
    s.shadow = true;
    s.step_started_ms = started_ms;
    s
}

#[test]
fn a_rollout_with_a_shadow_stage_begins_with_it_and_its_mirror_is_the_canarys() {
    let p = plan();
    let pending = RolloutState::new("shop", "canary", "f", MovedBy::File, 0);
    let e = judge(
        p.shadow.as_ref().expect("shadow"),
        "canary",
        &counts(0, 0, 0, 0),
        (10, 14),
    );
    assert!(matches!(
        crate::rollout::machine::next(&p, &pending, &e, 0),
        Some(Next::Apply(0, Phase::Shadowing, Some(why))) if why == "shadow stage: 100% of the route's requests copied to canary for 5000 ms, no untagged request"
    ));
    assert_eq!(
        p.shadow_mirror(),
        Some(ShadowMirror {
            group: "canary".into(),
            share: 100_000
        })
    );
    // Without a stage: step 1 at once, as before.
    let none = crate::rollout::plan::test_plan();
    assert_eq!(none.shadow_mirror(), None);
    assert_eq!(
        crate::rollout::machine::next(&none, &pending, &e, 0),
        Some(Next::Apply(1, Phase::Progressing, None))
    );
}

#[test]
fn a_breach_in_the_stage_fails_the_rollout_naming_the_shadow_gate_and_figures() {
    let p = plan();
    let g = p.shadow.as_ref().expect("shadow");
    let e = judge(g, "canary", &counts(40, 40, 0, 0), (10, 14));
    let n = crate::rollout::machine::next(&p, &shadowing(10_000), &e, 10_100);
    let Some(Next::Apply(0, Phase::Failed, Some(why))) = n else {
        panic!("{n:?}");
    };
    assert_eq!(
        why,
        "shadow gate error_rate breached: 1.0000 > 0.05 (canary's answers to 40 copies: 40 errors, 0 mismatches of 0 compared, p99 latency 25 ms; window 5000 ms) before any untagged request reached the canary"
    );
    // Mismatches: over the copies compared.
    let e = judge(g, "canary", &counts(40, 0, 20, 3), (10, 14));
    assert_eq!(
        e.breach().map(|v| v.gate.as_str()),
        Some("shadow_mismatch_rate")
    );
    assert!((e.gates[2].value - 0.15).abs() < 1e-9);
    let e = judge(g, "canary", &counts(40, 0, 20, 2), (10, 14));
    assert_eq!(e.breach(), None);
    // `on_failure: pause` holds the stage instead.
    let mut pause = plan();
    pause.on_failure = OnFailure::Pause;
    let e = judge(g, "canary", &counts(40, 40, 0, 0), (10, 14));
    assert!(matches!(
        crate::rollout::machine::next(&pause, &shadowing(10_000), &e, 10_100),
        Some(Next::Set(Phase::Paused, Some(_)))
    ));
}

#[test]
fn the_window_is_the_whole_stage_so_far_its_last_300_s_at_most() {
    assert_eq!(span(10_500, 14), (10, 14));
    // A judgement that comes late loses none of the stage's answers.
    assert_eq!(span(10_500, 40), (10, 40));
    assert_eq!(span(10_500, 1_000), (700, 1_000));
    let g = plan();
    let e = judge(
        g.shadow.as_ref().expect("shadow"),
        "canary",
        &counts(1, 0, 0, 0),
        (10, 14),
    );
    assert_eq!(e.window_ms, 5_000);
}

#[test]
fn too_few_answers_are_not_judged_and_do_not_end_the_stage() {
    let p = plan();
    let e = judge(
        p.shadow.as_ref().expect("shadow"),
        "canary",
        &counts(19, 19, 0, 0),
        (10, 14),
    );
    assert!(!e.enough_traffic);
    assert_eq!(next(&p, &shadowing(10_000), &e, 10_100), None);
    assert_eq!(next(&p, &shadowing(10_000), &e, 99_000), None);
}

#[test]
fn a_stage_that_held_for_its_duration_hands_over_to_step_1() {
    let p = plan();
    let e = judge(
        p.shadow.as_ref().expect("shadow"),
        "canary",
        &counts(40, 1, 40, 0),
        (10, 14),
    );
    assert_eq!(e.breach(), None);
    assert_eq!(next(&p, &shadowing(10_000), &e, 14_999), None);
    assert_eq!(
        next(&p, &shadowing(10_000), &e, 15_000),
        Some(Next::Apply(
            1,
            Phase::Progressing,
            Some(
                "shadow stage held for 5000 ms: 40 copies, 1 errors, 0 mismatches of 40 compared"
                    .into()
            )
        ))
    );
    // Step 1 waits for a promote: the stage ends (its mirror taken away) at share 0.
    let mut approval = plan();
    approval.pause_before = vec![10];
    assert!(matches!(
        next(&approval, &shadowing(10_000), &e, 15_000),
        Some(Next::Apply(0, Phase::AwaitingApproval, Some(why))) if why.ends_with("step 1 (10%) waits for a promote")
    ));
}

#[test]
fn controls_work_in_the_stage() {
    let p = plan();
    let s = shadowing(10_000);
    assert!(matches!(
        decide("shop", Control::Pause, &s, &p),
        Ok(Next::Set(Phase::Paused, _))
    ));
    assert!(matches!(
        decide("shop", Control::Abort, &s, &p),
        Ok(Next::Apply(0, Phase::Aborted, _))
    ));
    assert!(matches!(
        decide("shop", Control::Promote { to_end: false }, &s, &p),
        Ok(Next::Apply(1, Phase::Progressing, _))
    ));
    // Paused in the stage: a resume starts the stage again.
    let mut paused = s.clone();
    paused.state = Phase::Paused;
    assert!(matches!(
        decide("shop", Control::Resume, &paused, &p),
        Ok(Next::Apply(0, Phase::Shadowing, Some(why))) if why.starts_with("resumed by control")
    ));
    // Paused before any stage or step: pending again.
    paused.shadow = false;
    assert_eq!(
        decide("shop", Control::Resume, &paused, &p).ok(),
        Some(Next::Set(Phase::Pending, None))
    );
}
