//! Rollout state end to end: a restart and a binary upgrade in the middle resume at the same
//! step; an unrelated edit keeps the rollout going and an edit of its split restarts it; a step
//! rolled back like any version pauses the rollout; `dyegate check` locates rollout errors.

use std::time::Duration;

use dyegate_suite::rollout::*;
use dyegate_suite::{Dyegate, GatewayConfig, Req};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_resumes_at_the_same_step() {
    let (stable, canary) = upstreams();
    let fields = "steps: [20, 50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 1, max_error_rate: 0.5 }";
    let gw = Dyegate::start(&routes(&stable, &canary, fields, ""));
    wait_rollout(&gw, Duration::from_secs(20), "step 1", |r| r["step"] == 1).await;
    let (code, body) = gw.admin_post("/rollouts/shop/promote", None).await;
    assert_eq!(code, 200, "{body:#}");
    let version = gw.version().await;
    let gw = gw.restart();
    // At once, before any judgement: step 2, in the table too, with the same version.
    let r = rollout(&gw).await;
    assert_eq!(r["step"], 2, "{r:#}");
    assert_eq!(r["table_canary_share"], 50.0, "{r:#}");
    assert_eq!(gw.version().await, version);
    let mut on_canary = 0;
    for _ in 0..40 {
        if Req::get("/").send(gw.addr()).await.upstream() == Some("canary") {
            on_canary += 1;
        }
    }
    assert!(
        (10..=30).contains(&on_canary),
        "{on_canary} of 40 on the canary at 50%"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binary_upgrade_resumes_at_the_same_step() {
    let fields = "steps: [20, 50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 1, max_error_rate: 0.5 }";
    let (gw, steps, _upstreams) = upgradable_at_step_1(fields).await;
    let (code, _) = gw
        .gateway()
        .admin_post("/rollouts/shop/promote", None)
        .await;
    assert_eq!(code, 200);
    gw.upgrade_ok().await;
    let r = steps.status().await;
    assert_eq!(r["step"], 2, "{r:#}\n{}", gw.logs());
    assert_eq!(r["table_canary_share"], 50.0, "{r:#}");
    assert_ne!(gw.status().await["pid"], gw.gateway().pid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unrelated_edit_keeps_the_rollout_and_an_edit_of_its_split_restarts_it() {
    let (stable, canary) = upstreams();
    let fields = "steps: [20, 50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 1, max_error_rate: 0.5 }";
    let text = routes(&stable, &canary, fields, "");
    let gw = Dyegate::start(&text);
    wait_rollout(&gw, Duration::from_secs(20), "step 1", |r| r["step"] == 1).await;
    let (code, _) = gw.admin_post("/rollouts/shop/promote", None).await;
    assert_eq!(code, 200);

    let unrelated = edit_unrelated(&gw, &text).await;
    let r = rollout(&gw).await;
    // Still on step 2. Without traffic, a judgement in between (a loaded machine takes more
    // than a second for the edit) moves it to waiting_for_traffic, on the same step.
    let on_step_2 = is("progressing", 2)(&r) || is("waiting_for_traffic", 2)(&r);
    assert!(on_step_2, "{r:#}");
    assert_eq!(r["table_canary_share"], 50.0, "{r:#}");
    // SIGHUP with the file unchanged: nothing moves.
    sighup_and_wait(&gw).await;
    assert_eq!(rollout(&gw).await["table_canary_share"], 50.0);

    let v = gw.version().await;
    let edited = unrelated.replace(
        "{ upstream: stable, weight: 100 }",
        "{ upstream: stable, weight: 90 }",
    );
    gw.config().write_and_rename("routes.yaml", &edited);
    gw.wait_for_status(Duration::from_secs(10), "the split edit", |s| {
        s["version"].as_u64() > Some(v)
    })
    .await;
    let r = wait_rollout(&gw, Duration::from_secs(10), "a restart at step 1", |r| {
        r["step"] == 1
    })
    .await;
    let moves = r["history"].as_array().expect("history");
    assert!(
        moves
            .iter()
            .any(|m| m["by"] == "file" && m["state"] == "pending"),
        "{r:#}"
    );
    let audit = gw.config().audit_records();
    assert!(
        audit.iter().any(|a| a["trigger"] == "file"
            && a["rollout"]["rollouts"]
                .to_string()
                .contains("rollout of shop restarted")),
        "{audit:#?}"
    );
    assert!(gw
        .logs()
        .contains("rollout of shop restarted from the file's weights"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_can_be_rolled_back_like_any_version_and_the_rollout_pauses() {
    let (stable, canary) = upstreams();
    let fields = "steps: [20, 50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 1, max_error_rate: 0.5 }";
    let text = routes(&stable, &canary, fields, "");
    let gw = Dyegate::start(&text);
    wait_rollout(&gw, Duration::from_secs(20), "step 1", |r| r["step"] == 1).await;
    let (code, _) = gw.admin_post("/rollouts/shop/promote", None).await;
    assert_eq!(code, 200);
    // The previous version is step 1's. An edit of the file follows the rollback at once,
    // before the controller's next judgement: its reload must not undo the rollback (it used
    // to write step 2's weights back when the file's watcher fired late).
    let (code, body) = gw.admin_post("/rollback", None).await;
    assert_eq!(code, 200, "{body:#}");
    edit_unrelated(&gw, &text).await;
    let r = wait_rollout(&gw, Duration::from_secs(5), "a pause", |r| {
        r["state"] == "paused"
    })
    .await;
    assert_eq!(r["table_canary_share"], 20.0, "{r:#}");
    let why = r["history"]
        .as_array()
        .and_then(|h| h.last())
        .map(|m| m["reason"].to_string());
    assert!(
        why.as_deref().is_some_and(|w| w.contains("rollback")),
        "{r:#}"
    );
    // Paused, a reload of the file keeps the rolled-back weights too.
    sighup_and_wait(&gw).await;
    let r = rollout(&gw).await;
    assert_eq!(r["state"], "paused", "{r:#}");
    assert_eq!(r["table_canary_share"], 20.0, "{r:#}");
    // Resume applies step 2 again.
    let (code, body) = gw.admin_post("/rollouts/shop/resume", None).await;
    assert_eq!(code, 200, "{body:#}");
    assert!(is("progressing", 2)(&body), "{body:#}");
    assert_eq!(body["table_canary_share"], 50.0, "{body:#}");
}

#[test]
fn dyegate_check_reports_rollout_errors_located() {
    let (stable, canary) = upstreams();
    let check = |fields: &str, canary_name: &str| {
        let text = routes(&stable, &canary, fields, "").replace(
            "canary: canary, steps",
            &format!("canary: {canary_name}, steps"),
        );
        let out = GatewayConfig::new(&text).check();
        assert_eq!(out.code, Some(1), "{out}");
        out
    };
    // Every cross-field error at once, each with FILE:LINE:COL.
    let out = check(
        "steps: [10, 5], step_ms: 1000, gates: { window_ms: 0, max_error_rate: 0.05 }",
        "nope",
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, want) in lines.iter().zip([
        "routes.yaml:10:24: routes[0].rollout.canary: found \"nope\", expected a group of this route's split (one of `stable`, `canary`)",
        "routes.yaml:10:42: routes[0].rollout.steps[1]: found 5 after 10, expected steps strictly increasing",
        "routes.yaml:10:81: routes[0].rollout.gates.window_ms: found 0, expected a whole number of milliseconds from 1 to 300000",
    ]) {
        assert!(line.ends_with(want), "{line:?} is not {want:?}\n{out}");
    }
    let out = check(
        "steps: [10, 120], step_ms: 1000, gates: { max_error_rate: 0.05 }",
        "canary",
    );
    assert!(
        out.stdout.contains("routes.yaml:10:44: routes[0].rollout.steps[1]: found 120, expected a whole number of percent from 1 to 100"),
        "{out}"
    );
}
