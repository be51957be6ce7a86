//! An operator's rollback is the emergency brake (issue 27, item 2): for a route with a
//! rollout, a rollback during or after it pauses the rollout with the reason `rollback to vN`,
//! and the rolled-back weights hold across reloads, unrelated edits, restarts and binary
//! upgrades until a resume (or an edit of the route's split or rollout).

use std::time::Duration;

use dyegate_suite::rollout::*;
use dyegate_suite::{Dyegate, Req};
use serde_json::Value;

/// Step 1 at once, each later step only by a promote (a minute per step).
const SLOW: &str = "steps: [20, 50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 1, max_error_rate: 0.5 }";

/// How many of `n` plain requests the canary answered.
async fn on_canary(gw: &Dyegate, n: usize) -> usize {
    let mut c = 0;
    for _ in 0..n {
        if Req::get("/").send(gw.addr()).await.upstream() == Some("canary") {
            c += 1;
        }
    }
    c
}

/// The reason of the rollout's last move.
fn last_reason(r: &Value) -> Value {
    let moves = r["history"].as_array().expect("history");
    moves.last().expect("a move")["reason"].clone()
}

fn paused_by_rollback_to_v1(r: &Value) {
    assert_eq!(r["state"], "paused", "{r:#}");
    assert_eq!(last_reason(r), "rollback to v1", "{r:#}");
    assert_eq!(r["table_canary_share"], 0.0, "{r:#}");
    assert_eq!(r["canary_share"], 0.0, "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_after_success_holds_across_reloads_and_a_restart_until_resume() {
    let (stable, canary) = upstreams();
    let text = routes(&stable, &canary, SLOW, "");
    let gw = Dyegate::start(&text);
    wait_rollout(&gw, Duration::from_secs(20), "step 1", |r| r["step"] == 1).await;
    let (code, body) = gw
        .admin_post("/rollouts/shop/promote?to_end=true", None)
        .await;
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["state"], "succeeded", "{body:#}");
    assert_eq!(on_canary(&gw, 20).await, 20);

    let (code, body) = gw.admin_post("/rollback", Some(r#"{"to": 1}"#)).await;
    assert_eq!(code, 200, "{body:#}");
    paused_by_rollback_to_v1(&rollout(&gw).await);
    assert_eq!(on_canary(&gw, 20).await, 0);

    // SIGHUP of the unchanged file: the rollback holds (it used to put 100% back).
    sighup_and_wait(&gw).await;
    paused_by_rollback_to_v1(&rollout(&gw).await);
    // An unrelated edit of the file: still held.
    edit_unrelated(&gw, &text).await;
    paused_by_rollback_to_v1(&rollout(&gw).await);
    assert_eq!(on_canary(&gw, 20).await, 0);
    // The gates judge the paused rollout and move nothing.
    paused_by_rollback_to_v1(&judged(&gw, "shop", 2).await);

    // A restart: still paused, still at 0, at once.
    let gw = gw.restart();
    paused_by_rollback_to_v1(&rollout(&gw).await);
    assert_eq!(on_canary(&gw, 20).await, 0);

    // Resume: the last step again, then succeeded once its step_ms is over.
    let (code, body) = gw.admin_post("/rollouts/shop/resume", None).await;
    assert_eq!(code, 200, "{body:#}");
    assert!(is("progressing", 3)(&body), "{body:#}");
    assert_eq!(body["table_canary_share"], 100.0, "{body:#}");
    assert_eq!(on_canary(&gw, 20).await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_during_a_step_holds_across_a_binary_upgrade() {
    let (gw, steps, _upstreams) = upgradable_at_step_1(SLOW).await;
    let (code, body) = gw
        .gateway()
        .admin_post("/rollback", Some(r#"{"to": 1}"#))
        .await;
    assert_eq!(code, 200, "{body:#}");
    paused_by_rollback_to_v1(&steps.status().await);

    gw.upgrade_ok().await;
    let r = steps.status().await;
    assert_eq!(r["state"], "paused", "{r:#}\n{}", gw.logs());
    assert_eq!(last_reason(&r), "rollback to v1", "{r:#}");
    // It used to serve step 1's 20% again while saying paused.
    assert_eq!(r["table_canary_share"], 0.0, "{r:#}\n{}", gw.logs());
    assert_ne!(gw.status().await["pid"], gw.gateway().pid());
}
