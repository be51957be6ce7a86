//! The shadow stage through the controller (the harness of `controller_tests.rs`): the mirror
//! set over the table and taken away in the commits that move the rollout, the canary's answers
//! to the copies fed to the tally by hand.

use super::*;
use crate::mirror::Outcome;

/// [`QUICK`] after a shadow stage of 3 s, judged on at least 20 answers with at most 5% errors.
const SHADOWED: &str = "steps: [10, 50, 100], step_ms: 1000, gates: { window_ms: 1000, min_requests: 20, max_error_rate: 0.05 }, shadow: { percent: 100, duration_ms: 3000, gates: { min_requests: 20, max_error_rate: 0.05 } }";

impl Gateway {
    /// `shop`'s mirrors in the running table: (group id, share).
    fn mirrors(&self) -> Vec<(usize, u32)> {
        let table = self.reloader.table();
        let route = table.routes().iter().find(|r| &*r.name == "shop");
        let route = route.expect("shop in the table");
        route.mirror.iter().map(|m| (m.group, m.share)).collect()
    }

    /// `copies` answers of the canary to copies in the current second, the first `failed` of
    /// them with a 500.
    fn shadow(&self, copies: u64, failed: u64) {
        let tally = self.metrics.shadow_tally();
        let second = self.clock.now_second();
        for i in 0..copies {
            let status = if i < failed { 500 } else { 200 };
            tally.answer("shop", "canary", status, 5, second);
            tally.outcome("shop", "canary", Outcome::Sent, second);
        }
    }
}

/// The canary's group id and 100% in thousandths.
const STAGE: (usize, u32) = (1, 100_000);

#[test]
fn a_canary_failing_on_the_copies_is_failed_in_the_stage_at_share_0() {
    let gw = Gateway::start(SHADOWED);
    gw.tick();
    assert_eq!(gw.at(), (Phase::Shadowing, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    assert_eq!(gw.mirrors(), vec![STAGE]);
    // Real canary requests do not count in the stage (tagged ones may reach it).
    gw.canary(100, 0, 10);
    gw.shadow(30, 30);
    gw.after(500);
    assert_eq!(gw.at(), (Phase::Failed, 0, Some(0)));
    assert!(
        gw.reason().starts_with("shadow gate error_rate breached: 1.0000 > 0.05 (canary's answers to 30 copies: 30 errors"),
        "{}",
        gw.reason()
    );
    assert_eq!(gw.weights(), ZERO);
    assert_eq!(gw.mirrors(), vec![]);
    let states: Vec<Phase> = gw.state().history.iter().map(|m| m.state).collect();
    assert_eq!(states, [Phase::Pending, Phase::Shadowing, Phase::Failed]);
}

#[test]
fn a_stage_that_holds_hands_over_to_step_1_and_survives_a_restart() {
    let gw = Gateway::start(SHADOWED);
    gw.tick();
    gw.shadow(30, 1);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::Shadowing, 0, Some(0)));
    // A new process (and a reload) keep the stage and its mirror.
    let gw = gw.restart();
    assert_eq!(gw.mirrors(), vec![STAGE]);
    assert!(gw.kept().shadow);
    // An edit elsewhere in the file: a new version, the stage's mirror set over it again.
    let path = gw.dir.path().join("routes.yaml");
    std::fs::write(&path, format!("{}# edited\n", routes(SHADOWED))).expect("routes.yaml");
    let report = gw.reloader.reload(Trigger::File, Caller::default());
    assert_eq!(report.result, crate::reload::Outcome::Applied, "{report:?}");
    assert_eq!(gw.mirrors(), vec![STAGE]);
    assert_eq!(gw.at(), (Phase::Shadowing, 0, Some(0)));
    gw.shadow(30, 0);
    gw.after(1999);
    assert_eq!(gw.at(), (Phase::Shadowing, 0, Some(0)));
    gw.after(1);
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    assert_eq!(gw.mirrors(), vec![]);
    assert!(
        gw.reason().starts_with("shadow stage held for 3000 ms"),
        "{}",
        gw.reason()
    );
}

#[test]
fn pause_resume_and_abort_work_in_the_stage() {
    let gw = Gateway::start(SHADOWED);
    gw.tick();
    gw.control(Control::Pause).expect("paused");
    assert_eq!(gw.at(), (Phase::Paused, 0, Some(0)));
    assert_eq!(gw.mirrors(), vec![STAGE]);
    // Paused: not judged, not ended.
    gw.shadow(30, 30);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::Paused, 0, Some(0)));
    gw.control(Control::Resume).expect("resumed");
    assert_eq!(gw.at(), (Phase::Shadowing, 0, Some(0)));
    assert_eq!(gw.state().step_started_ms, T0 + 5000);
    assert_eq!(gw.mirrors(), vec![STAGE]);
    gw.control(Control::Abort).expect("aborted");
    assert_eq!(gw.at(), (Phase::Aborted, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    assert_eq!(gw.mirrors(), vec![]);
}
