//! Unit tests of `controller.rs` on a hand-moved clock: a real reloader over a routes file in a
//! temp dir, the controller attached to it as `main.rs` does, the canary's window fed by hand,
//! one [`Controller::tick`] per judgement. No wall-clock waits.

use super::*;
use crate::config::routes_from_text_over;
use crate::reload::{Caller, HistoryLimits, Reloader, Trigger};
use crate::rollout::clock::ManualClock;
use crate::rollout::controls::Control;
use crate::rollout::RolloutError;
use serde_json::Value;
use tempfile::TempDir;

/// Where the clock starts (Unix milliseconds): the start of a second.
const T0: u64 = 1_700_000_000_000;

/// Ten, fifty, then a hundred percent, a step a second, judged on a one-second window of at
/// least 20 canary requests with at most 5% errors.
const QUICK: &str = "steps: [10, 50, 100], step_ms: 1000, gates: { window_ms: 1000, min_requests: 20, max_error_rate: 0.05 }";

/// The split's weights (stable, canary): as the file has them, at each step, and at share 0.
const FILE: [u32; 2] = [100, 0];
const STEP1: [u32; 2] = [9000, 1000];
const STEP2: [u32; 2] = [5000, 5000];
const STEP3: [u32; 2] = [0, 10000];
const ZERO: [u32; 2] = [10000, 0];

/// routes.yaml: `shop` splits stable 100 / canary 0 and `rollout` (flow mapping fields)
/// drives the canary.
fn routes(rollout: &str) -> String {
    format!(
        "upstreams:
  stable: {{ targets: [\"127.0.0.1:9001\"] }}
  canary: {{ targets: [\"127.0.0.1:9002\"] }}
routes:
  - name: shop
    split:
      - {{ upstream: stable, weight: 100 }}
      - {{ upstream: canary, weight: 0 }}
    rollout: {{ canary: canary, {rollout} }}
"
    )
}

/// The rollout half of a gateway: a controller on a manual clock, attached to a reloader over
/// `dir/routes.yaml` with its state in `dir/state`.
struct Gateway {
    clock: Arc<ManualClock>,
    metrics: Arc<Metrics>,
    controller: Arc<Controller>,
    reloader: Arc<Reloader>,
    dir: TempDir,
}

impl Gateway {
    fn start(rollout: &str) -> Gateway {
        let dir = TempDir::new().expect("a temp dir");
        std::fs::write(dir.path().join("routes.yaml"), routes(rollout)).expect("routes.yaml");
        Gateway::boot(dir, ManualClock::at(T0))
    }

    /// As `main.rs` starts: the kept rollouts set their steps over the file's table, the
    /// reloader starts from it with the controller as its overlay.
    fn boot(dir: TempDir, clock: Arc<ManualClock>) -> Gateway {
        let path = dir.path().join("routes.yaml");
        let state_dir = dir.path().join("state");
        let metrics = Metrics::new();
        let controller = Controller::with_clock(&state_dir, metrics.clone(), clock.clone());
        let text = std::fs::read(&path).expect("routes.yaml");
        let nothing = RouteTable::default();
        let loaded = routes_from_text_over("routes.yaml", text, None, usize::MAX, &mut |m| {
            controller
                .over(
                    &crate::config::table::compile_rollout::plans(m),
                    &nothing,
                    crate::telemetry::labels::TriggerLabel::Startup,
                )
                .0
        })
        .expect("valid routes");
        let limits = HistoryLimits {
            count: 50,
            bytes: 1 << 20,
        };
        let audit = dir.path().join("audit.log");
        let reloader = Reloader::new(&path, loaded, &state_dir, limits, &audit, metrics.clone());
        let reloader = Arc::new(
            reloader
                .expect("a reloader")
                .with_overlay(controller.clone()),
        );
        Gateway {
            clock,
            metrics,
            controller,
            reloader,
            dir,
        }
    }

    /// A new process over the same files (routes, state, history, audit); the clock goes on.
    fn restart(self) -> Gateway {
        let Gateway { dir, clock, .. } = self;
        Gateway::boot(dir, clock)
    }

    fn state(&self) -> RolloutState {
        let inner = self.controller.lock();
        inner
            .states
            .get("shop")
            .cloned()
            .expect("a rollout of shop")
    }

    /// Phase, step and the canary's share as the controller has them.
    fn at(&self) -> (Phase, usize, Option<u8>) {
        let s = self.state();
        (s.state, s.step, s.share)
    }

    /// The state as `state_dir/rollouts.json` keeps it.
    fn kept(&self) -> RolloutState {
        let mut states = Store::new(&self.dir.path().join("state")).load();
        states.remove("shop").expect("shop kept in rollouts.json")
    }

    /// The weights of `shop`'s split in the running table.
    fn weights(&self) -> Vec<u32> {
        let table = self.reloader.table();
        let route = table.routes().iter().find(|r| &*r.name == "shop");
        route.expect("shop in the table").split.weights.clone()
    }

    /// Records `requests` finished canary requests in the current second, the first `errors`
    /// of them failed, each taking `ms`.
    fn canary(&self, requests: u64, errors: u64, ms: u64) {
        self.traffic("canary", requests, errors, ms);
    }

    fn traffic(&self, group: &str, requests: u64, errors: u64, ms: u64) {
        let w = self.metrics.rollout_window("shop", group);
        let second = self.clock.now_second();
        for i in 0..requests {
            w.record_at(second, i < errors, ms);
        }
    }

    /// One judgement `ms` from now.
    fn after(&self, ms: u64) {
        self.clock.advance(ms);
        self.tick();
    }

    /// One judgement now.
    fn tick(&self) {
        self.controller.tick(&*self.reloader);
    }

    fn control(&self, control: Control) -> Result<Value, RolloutError> {
        (self.controller).control(
            "shop",
            control,
            Caller {
                client: Some("127.0.0.1:4000".into()),
                identity: None,
            },
            &*self.reloader,
        )
    }

    /// The reason of the last move.
    fn reason(&self) -> String {
        let s = self.state();
        let last = s.history.last().expect("moves");
        last.reason.clone().unwrap_or_default()
    }
}

#[test]
fn a_step_is_promoted_only_after_step_ms_with_min_requests_in_the_window() {
    let gw = Gateway::start(QUICK);
    assert_eq!(gw.at(), (Phase::Pending, 0, None));
    assert_eq!(gw.weights(), FILE);
    gw.tick();
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    assert_eq!(gw.state().step_started_ms, T0);
    // Enough traffic, step_ms not over yet.
    gw.canary(20, 0, 10);
    gw.after(999);
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    gw.after(1);
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    assert_eq!(gw.weights(), STEP2);
    assert_eq!(gw.state().step_started_ms, T0 + 1000);
    // step_ms over, one request short of min_requests: no promotion.
    gw.canary(19, 0, 10);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::WaitingForTraffic, 2, Some(50)));
    assert_eq!(gw.weights(), STEP2);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::WaitingForTraffic, 2, Some(50)));
    gw.canary(20, 0, 10);
    gw.tick();
    assert_eq!(gw.at(), (Phase::Progressing, 3, Some(100)));
    assert_eq!(gw.weights(), STEP3);
    // The last step held for step_ms: succeeded, the table keeps its weights.
    gw.canary(20, 0, 10);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::Succeeded, 3, Some(100)));
    gw.canary(20, 19, 10);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::Succeeded, 3, Some(100)));
    assert_eq!(gw.weights(), STEP3);
    let kept = gw.kept();
    assert_eq!((kept.state, kept.step, kept.share), gw.at());
    // Each step is a version of the table with trigger `rollout`.
    let steps: Vec<Trigger> = (gw.reloader.versions().into_iter())
        .map(|v| v.trigger)
        .filter(|t| matches!(t, Trigger::Rollout { .. }))
        .collect();
    let step = |step| Trigger::Rollout {
        route: "shop".into(),
        step,
    };
    assert_eq!(steps, vec![step(1), step(2), step(3)]);
}

#[test]
fn a_breached_error_rate_takes_the_canary_to_0_at_the_next_judgement() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    gw.canary(20, 0, 10);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    // The other groups' errors are not the canary's.
    gw.traffic("stable", 50, 50, 10);
    gw.canary(20, 1, 10);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    // 3 errors in 40: 7.5% > 5%.
    gw.canary(20, 2, 10);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Failed, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    assert!(
        gw.reason()
            .starts_with("gate error_rate breached: 0.0750 > 0.05"),
        "{}",
        gw.reason()
    );
    // Failed is final: healthy figures later do not move it.
    gw.canary(100, 0, 10);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::Failed, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    assert_eq!(gw.kept().state, Phase::Failed);
}

#[test]
fn a_breached_latency_gate_takes_the_canary_to_0_at_the_next_judgement() {
    let gw = Gateway::start(
        "steps: [10, 50, 100], step_ms: 1000, gates: { window_ms: 1000, min_requests: 20, max_latency_ms: 500 }",
    );
    gw.tick();
    gw.canary(20, 0, 400);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    // p99 of 40 requests is the slowest: in the 1000 ms bucket.
    gw.canary(20, 0, 900);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Failed, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    assert!(
        gw.reason()
            .starts_with("gate latency breached: 1000.0000 > 500"),
        "{}",
        gw.reason()
    );
}

#[test]
fn on_failure_pause_holds_the_step_on_a_breach() {
    let gw = Gateway::start(
        "steps: [10, 50, 100], step_ms: 1000, on_failure: pause, gates: { window_ms: 1000, min_requests: 20, max_error_rate: 0.05 }",
    );
    gw.tick();
    gw.canary(20, 10, 10);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Paused, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    gw.canary(20, 0, 10);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::Paused, 1, Some(10)));
}

#[test]
fn low_traffic_waits_and_the_wait_ends_when_traffic_comes() {
    let gw = Gateway::start(
        "steps: [10, 50, 100], step_ms: 5000, gates: { window_ms: 1000, min_requests: 20, max_error_rate: 0.05 }",
    );
    gw.tick();
    // Too few requests to judge, all of them failed: waits, never fails.
    gw.canary(5, 5, 10);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::WaitingForTraffic, 1, Some(10)));
    gw.after(900);
    assert_eq!(gw.at(), (Phase::WaitingForTraffic, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    // Traffic before step_ms is over: judged again, not promoted yet.
    gw.after(1000);
    gw.canary(20, 0, 10);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    gw.clock.advance(2800);
    gw.canary(20, 0, 10);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    // A long wait never promotes on its own...
    for _ in 0..10 {
        gw.after(1000);
        assert_eq!(gw.at(), (Phase::WaitingForTraffic, 2, Some(50)));
    }
    assert_eq!(gw.weights(), STEP2);
    assert_eq!(gw.kept().state, Phase::WaitingForTraffic);
    // ...and traffic after step_ms promotes at once.
    gw.canary(20, 0, 10);
    gw.tick();
    assert_eq!(gw.at(), (Phase::Progressing, 3, Some(100)));
    assert_eq!(gw.weights(), STEP3);
}

#[test]
fn pause_resume_promote_and_abort_move_the_rollout_and_the_table() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    let conflict = |state: &'static str, why: &'static str| {
        Err(RolloutError::Conflict {
            route: "shop".into(),
            state,
            why,
        })
    };
    let status = gw.control(Control::Pause).expect("pause");
    assert_eq!(status["state"], "paused");
    assert_eq!(status["step"], 1);
    assert_eq!(gw.at(), (Phase::Paused, 1, Some(10)));
    assert_eq!(
        gw.control(Control::Pause),
        conflict("paused", "already paused")
    );
    // The gates do not move a paused rollout.
    gw.canary(20, 0, 10);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::Paused, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    // Resume applies the step again, which starts its step_ms again.
    gw.control(Control::Resume).expect("resume");
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    assert_eq!(gw.state().step_started_ms, T0 + 5000);
    assert_eq!(gw.weights(), STEP1);
    let promote = Control::Promote { to_end: false };
    gw.control(promote).expect("promote");
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    assert_eq!(gw.weights(), STEP2);
    gw.control(Control::Abort).expect("abort");
    assert_eq!(gw.at(), (Phase::Aborted, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    assert_eq!(gw.control(promote), conflict("aborted", "resume it first"));
    assert_eq!(
        gw.control(Control::Abort),
        conflict("aborted", "the canary is at 0 already")
    );
    gw.canary(20, 0, 10);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::Aborted, 0, Some(0)));
    // Resume after an abort starts again: the next judgement applies step 1.
    gw.control(Control::Resume).expect("resume");
    assert_eq!(gw.at(), (Phase::Pending, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    gw.tick();
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    gw.control(Control::Promote { to_end: true })
        .expect("promote to the end");
    assert_eq!(gw.at(), (Phase::Succeeded, 3, Some(100)));
    assert_eq!(gw.weights(), STEP3);
    assert_eq!(
        gw.control(promote),
        conflict("succeeded", "at its last step already")
    );
    assert_eq!(
        gw.control(Control::Pause),
        conflict("succeeded", "nothing to pause")
    );
    assert_eq!(
        gw.controller
            .control("nowhere", Control::Pause, Caller::default(), &*gw.reloader),
        Err(RolloutError::NoRollout("nowhere".into()))
    );
    assert_eq!(gw.state().moved_by, MovedBy::Control);
    assert_eq!(gw.kept().state, Phase::Succeeded);
    // A control that changes no weight has its own audit line, with the client.
    let audit = std::fs::read_to_string(gw.dir.path().join("audit.log")).expect("audit log");
    let pause: Value = (audit.lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["control"] == "pause")
        .expect("the pause audited");
    assert_eq!(pause["client"], "127.0.0.1:4000");
    assert_eq!(pause["state"], "paused");
}

#[test]
fn a_step_in_pause_before_waits_for_a_promote() {
    let gw = Gateway::start(
        "steps: [10, 50, 100], step_ms: 1000, pause_before: [50], gates: { window_ms: 1000, min_requests: 20, max_error_rate: 0.05 }",
    );
    gw.tick();
    gw.canary(20, 0, 10);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::AwaitingApproval, 1, Some(10)));
    gw.canary(20, 0, 10);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::AwaitingApproval, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    gw.control(Control::Promote { to_end: false })
        .expect("promote");
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    assert_eq!(gw.weights(), STEP2);
}

#[test]
fn a_rollback_pauses_the_rollout_at_once_and_resume_applies_the_step_again() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    assert_eq!(gw.weights(), STEP1);
    // A rollback to the startup version gives the canary 0%, not step 1's 10%.
    let report = gw.reloader.rollback(None, Caller::default());
    assert!(report.expect("rollback").errors.is_empty());
    assert_eq!(gw.weights(), FILE);
    assert_eq!(gw.at(), (Phase::Paused, 1, Some(10)));
    assert_eq!(gw.reason(), "rollback to v1");
    assert_eq!(gw.state().held, Some(FILE.to_vec()));
    assert_eq!(gw.kept().held, Some(FILE.to_vec()));
    // Paused: the gates move nothing, the rollback's weights stay.
    gw.canary(20, 0, 10);
    gw.after(2000);
    assert_eq!(gw.at(), (Phase::Paused, 1, Some(10)));
    assert_eq!(gw.weights(), FILE);
    let status = gw.controller.status("shop", &*gw.reloader).expect("status");
    assert_eq!(status["canary_share"], 0.0, "{status:#}");
    gw.control(Control::Resume).expect("resume");
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
    assert_eq!(gw.state().held, None);
}

#[test]
fn a_reload_after_a_rollback_keeps_the_rollback_and_pauses() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    gw.reloader
        .rollback(None, Caller::default())
        .expect("rollback");
    gw.reloader.reload(Trigger::File, Caller::default());
    assert_eq!(gw.at(), (Phase::Paused, 1, Some(10)));
    assert_eq!(gw.weights(), FILE);
    gw.control(Control::Resume).expect("resume");
    assert_eq!(gw.weights(), STEP1);
}

#[test]
fn a_rollback_after_success_holds_across_reloads_and_restarts_until_resume() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    gw.control(Control::Promote { to_end: true })
        .expect("promote to the end");
    assert_eq!(gw.at(), (Phase::Succeeded, 3, Some(100)));
    assert_eq!(gw.weights(), STEP3);
    let report = gw.reloader.rollback(Some(1.into()), Caller::default());
    assert!(report.expect("rollback").errors.is_empty());
    assert_eq!(gw.weights(), FILE);
    assert_eq!(gw.at(), (Phase::Paused, 3, Some(100)));
    assert_eq!(gw.reason(), "rollback to v1");
    // A reload of the unchanged file, an unrelated edit, judgements: the rollback holds.
    gw.reloader.reload(Trigger::File, Caller::default());
    assert_eq!(gw.weights(), FILE);
    let unrelated = format!(
        "{}  - name: api\n    match: {{ path_prefix: /api }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        routes(QUICK)
    );
    std::fs::write(gw.dir.path().join("routes.yaml"), unrelated).expect("routes.yaml");
    let report = gw.reloader.reload(Trigger::File, Caller::default());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(gw.weights(), FILE);
    gw.canary(20, 0, 10);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::Paused, 3, Some(100)));
    // A restart (or an upgrade: a new process on the same state_dir) too.
    let gw = gw.restart();
    assert_eq!(gw.at(), (Phase::Paused, 3, Some(100)));
    assert_eq!(gw.weights(), FILE);
    assert_eq!(gw.reason(), "rollback to v1");
    gw.after(5000);
    assert_eq!(gw.weights(), FILE);
    // Resume applies the last step again; it succeeds after step_ms.
    gw.control(Control::Resume).expect("resume");
    assert_eq!(gw.at(), (Phase::Progressing, 3, Some(100)));
    assert_eq!(gw.weights(), STEP3);
    gw.canary(20, 0, 10);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::Succeeded, 3, Some(100)));
}

#[test]
fn a_rollback_of_a_pending_or_failed_rollout_holds_too() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    gw.canary(20, 10, 10);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Failed, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    // Back to step 1's version: the operator's choice holds over the failure's 0%.
    let versions: Vec<u64> = gw.reloader.versions().iter().map(|v| v.version).collect();
    assert_eq!(versions.len(), 3, "{versions:?}");
    gw.reloader
        .rollback(Some(versions[1].into()), Caller::default())
        .expect("rollback");
    assert_eq!(gw.weights(), STEP1);
    assert_eq!(gw.at().0, Phase::Paused);
    gw.reloader.reload(Trigger::File, Caller::default());
    let gw = gw.restart();
    assert_eq!(gw.weights(), STEP1);
    // A resume of a rollout with no step starts it again.
    gw.control(Control::Resume).expect("resume");
    assert_eq!(gw.at(), (Phase::Pending, 0, Some(0)));
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
}

#[test]
fn an_edit_of_the_split_lets_go_of_a_rollback() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    gw.control(Control::Promote { to_end: true })
        .expect("promote");
    gw.reloader
        .rollback(Some(1.into()), Caller::default())
        .expect("rollback");
    assert_eq!(gw.at().0, Phase::Paused);
    let edited = routes(QUICK).replace("weight: 0 }", "weight: 1 }");
    std::fs::write(gw.dir.path().join("routes.yaml"), edited).expect("routes.yaml");
    let report = gw.reloader.reload(Trigger::File, Caller::default());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(gw.at(), (Phase::Pending, 0, None));
    assert_eq!(gw.state().held, None);
    assert_eq!(gw.weights(), [100, 1]);
}

#[test]
fn a_rollback_that_leaves_the_route_alone_moves_nothing() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    let unrelated = format!(
        "{}  - name: api\n    match: {{ path_prefix: /api }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        routes(QUICK)
    );
    std::fs::write(gw.dir.path().join("routes.yaml"), unrelated).expect("routes.yaml");
    gw.reloader.reload(Trigger::File, Caller::default());
    // Back to step 1's version without the api route: shop keeps its weights.
    gw.reloader
        .rollback(None, Caller::default())
        .expect("rollback");
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(10)));
    assert_eq!(gw.weights(), STEP1);
}

#[test]
fn an_edit_of_the_rollout_starts_it_again_from_the_file() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    gw.canary(20, 0, 10);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    // A reload of the same file keeps the step.
    gw.reloader.reload(Trigger::File, Caller::default());
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    assert_eq!(gw.weights(), STEP2);
    let edited = routes(QUICK).replace("[10, 50, 100]", "[20, 100]");
    std::fs::write(gw.dir.path().join("routes.yaml"), edited).expect("routes.yaml");
    let report = gw.reloader.reload(Trigger::File, Caller::default());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(gw.at(), (Phase::Pending, 0, None));
    assert_eq!(gw.weights(), FILE);
    gw.after(100);
    assert_eq!(gw.at(), (Phase::Progressing, 1, Some(20)));
    assert_eq!(gw.weights(), [8000, 2000]);
}

#[test]
fn a_restarted_controller_goes_on_where_the_old_one_was() {
    let gw = Gateway::start(QUICK);
    gw.tick();
    gw.canary(20, 0, 10);
    gw.after(1000);
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    let kept = gw.kept();
    assert_eq!((kept.state, kept.step, kept.share), gw.at());
    assert_eq!(kept.step_started_ms, T0 + 1000);
    gw.clock.advance(300);
    let gw = gw.restart();
    assert_eq!(gw.at(), (Phase::Progressing, 2, Some(50)));
    assert_eq!(gw.state().step_started_ms, T0 + 1000);
    // The restarted table serves the step, not the file's weights.
    assert_eq!(gw.weights(), STEP2);
    // Its step_ms counts from before the restart.
    gw.canary(20, 0, 10);
    gw.after(700);
    assert_eq!(gw.at(), (Phase::Progressing, 3, Some(100)));
    assert_eq!(gw.weights(), STEP3);
    // An aborted rollout stays aborted, its canary at 0.
    gw.control(Control::Abort).expect("abort");
    let gw = gw.restart();
    assert_eq!(gw.at(), (Phase::Aborted, 0, Some(0)));
    assert_eq!(gw.weights(), ZERO);
    gw.canary(20, 0, 10);
    gw.after(5000);
    assert_eq!(gw.at(), (Phase::Aborted, 0, Some(0)));
}

#[path = "controller_shadow_tests.rs"]
mod shadow;
