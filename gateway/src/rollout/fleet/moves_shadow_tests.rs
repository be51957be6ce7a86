//! The driver's judgement of a fleet's shadow stage: on the sum of every gateway's tally of the
//! canary's answers to its copies, without I/O or a clock.

use super::super::record::{Counts, FiguresRecord, ShadowRecord};
use super::super::sum::sum;
use super::tests::{assert_reason, at, driver};
use super::*;
use crate::mirror::tally::ShadowCounts;
use crate::rollout::shadow::Shadow;
use crate::telemetry::window::Window;

/// A stage of 5 s judged on 30 answers at least, 5% failures, 10% mismatches.
fn plan() -> Plan {
    Plan {
        shadow: Some({
            let mut stage = Shadow::for_tests(100_000, 5_000, 30);
            stage.gates.max_mismatch_rate = Some(0.1);
            stage
        }),
        fingerprint: "p1".into(),
        ..crate::rollout::plan::test_plan()
    }
}

/// In the stage since 10 s.
fn shadowing() -> RolloutState {
    let mut s = at(Phase::Shadowing, 0);
    s.share = Some(0);
    s.shadow = true;
    s
}

/// A gateway's window of the stage: no canary request, and `copies` answered by the canary
/// (`errors` of them failed), all compared, `mismatches` of them differing.
fn window(gateway: &str, copies: u64, errors: u64, mismatches: u64) -> FiguresRecord {
    let w = Window::new();
    for i in 0..copies {
        w.record_at(11, i < errors, 20);
    }
    let counts = ShadowCounts {
        answers: w.snapshot(11, 11),
        compared: copies,
        mismatches,
    };
    let group = |requests| Counts {
        requests,
        errors: 0,
        buckets: vec![requests],
    };
    FiguresRecord {
        groups: vec![group(copies), group(0)],
        shadow: Some(ShadowRecord::new(&counts, (10, 11))),
        ..super::tests::window(gateway, (0, 0), false)
    }
}

fn drive_at(windows: &[FiguresRecord], missing: &[String], now_ms: u64) -> Option<Written> {
    let p = plan();
    let fleet = sum(&p, 10_000, windows);
    drive(
        &p,
        Some(&shadowing()),
        &fleet,
        missing,
        &driver(),
        now_ms,
        vec![],
    )
    .1
}

#[test]
fn the_driver_begins_the_stage_as_a_step_every_gateway_applies() {
    let p = plan();
    let pending = RolloutState::new("shop", "canary", "p1", MovedBy::Etcd, 0);
    let (_, w) = drive(
        &p,
        Some(&pending),
        &Sum::default(),
        &[],
        &driver(),
        10_000,
        vec![],
    );
    let w = w.expect("the stage");
    assert_eq!((w.state.state, w.state.shadow), (Phase::Shadowing, true));
    let step = w.step.expect("the stage's record");
    assert_eq!(
        (step.state, step.step, step.weights.clone()),
        (Phase::Shadowing, 0, p.weights(0))
    );
}

#[test]
fn a_canary_failing_on_the_copies_is_failed_on_the_fleets_tally_only() {
    // 20 copies through each gateway, all answered 500: neither has min_requests alone.
    let gw1 = window("gw1", 20, 20, 0);
    let gw2 = window("gw2", 20, 20, 0);
    assert!(drive_at(std::slice::from_ref(&gw1), &[], 10_500).is_none());
    let w = drive_at(&[gw1, gw2], &[], 10_500).expect("a failure");
    assert_eq!((w.state.state, w.state.shadow), (Phase::Failed, false));
    assert_eq!(
        w.step.as_ref().map(|s| (s.state, s.step, s.share)),
        Some((Phase::Failed, 0, 0))
    );
    assert_reason(
        &w,
        "shadow gate error_rate breached: 1.0000 > 0.05 (canary's answers to 40 copies: 40 errors",
    );
}

#[test]
fn mismatches_are_judged_over_the_fleets_compared_copies() {
    // 2 of 20 and 3 of 20 differ: 12.5% over the fleet, past 10%.
    let w = drive_at(
        &[window("gw1", 20, 0, 2), window("gw2", 20, 0, 3)],
        &[],
        10_500,
    );
    let w = w.expect("a failure");
    assert_eq!(w.state.state, Phase::Failed);
    // 1 and 2 of 20: 7.5%, within.
    let w = drive_at(
        &[window("gw1", 20, 0, 1), window("gw2", 20, 0, 2)],
        &[],
        10_500,
    );
    assert!(w.is_none());
}

#[test]
fn a_healthy_stage_moves_to_step_1_once_every_gateway_is_heard() {
    let healthy = [window("gw1", 20, 0, 0), window("gw2", 20, 0, 0)];
    // Before duration_ms: nothing.
    assert!(drive_at(&healthy, &[], 14_000).is_none());
    // A live gateway not heard yet: nothing, however long.
    assert!(drive_at(&healthy, &["gw3".to_string()], 99_000).is_none());
    // One gateway's copies alone are too few.
    assert!(drive_at(&healthy[..1], &[], 99_000).is_none());
    let w = drive_at(&healthy, &[], 15_000).expect("step 1");
    assert_eq!(
        (w.state.state, w.state.step, w.state.shadow),
        (Phase::Progressing, 1, false)
    );
    let step = w.step.expect("step 1's weights");
    assert_eq!(
        (step.state, step.share, step.weights.clone()),
        (Phase::Progressing, 10, plan().weights(10))
    );
    let why = w.state.last_reason().unwrap_or_default();
    assert_eq!(
        why,
        "shadow stage held for 5000 ms: 40 copies, 0 errors, 0 mismatches of 40 compared"
    );
}

#[test]
fn the_fleets_evaluation_of_the_stage_is_the_shadows() {
    let p = plan();
    let fleet = sum(
        &p,
        10_000,
        &[window("gw1", 20, 1, 0), window("gw2", 10, 0, 0)],
    );
    let e = evaluate(&p, &shadowing(), &fleet, 12_000);
    let f = e.shadow.expect("the shadow's figures");
    assert_eq!((f.copies, f.errors, f.compared), (30, 1, 30));
    assert_eq!((e.enough_traffic, e.window_ms), (true, 3000));
    assert_eq!(e.groups[0].group, "canary");
    // Past the stage: the steps' gates on the groups' windows.
    let mut s = shadowing();
    s.shadow = false;
    s.state = Phase::Progressing;
    assert!(evaluate(&p, &s, &fleet, 12_000).shadow.is_none());
}
