//! Progressive delivery end to end, with the real binary, steady traffic and upstreams that go
//! bad on command: a healthy canary ramps to 100 and succeeds with the realised split matching
//! each step; a canary answering 500 to 30% of requests (or a slow one) is taken to 0 within
//! window + 1 s (+ slack for a loaded machine); low traffic waits and never promotes or fails;
//! `pause_before` waits for promote; the controls by CLI and API; sticky users on the canary
//! stay there; tagged requests reach the canary before, during and after an abort. State across
//! restart, upgrade and edits: tests/rollout/state.rs. The breach figures:
//! benches/rollout/figures.rs.

use std::time::{Duration, Instant};

use dyegate_suite::rollout::*;
use dyegate_suite::traffic::{Sample, Traffic};
use dyegate_suite::upstream::Fault;
use dyegate_suite::{poll_until, Dyegate, Req};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healthy_canary_reaches_100_with_the_realised_split_matching_each_step() {
    let (stable, canary) = upstreams();
    let clocks = dyegate_suite::time::Clocks::now();
    let gw = Dyegate::start(&routes(&stable, &canary, QUICK, ""));
    let traffic = Traffic::start(gw.addr(), 4, Duration::from_millis(4), vec![]);
    let succeeded = poll_until(
        Duration::from_secs(40),
        || rollout(&gw),
        |r| r["state"] == "succeeded",
    );
    let last = succeeded.await.unwrap_or_else(|last| last);
    // time is tested: traffic on the last step, for its realised split below.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let samples = traffic.stop().await;
    assert_eq!(last["state"], "succeeded", "{last:#}\n{}", gw.logs());
    assert_eq!(last["step"], 3);
    assert_eq!(last["table_canary_share"], 100.0, "{last:#}");
    assert_eq!(last["table_differs_from_file"], true, "{last:#}");
    // The steps as the gateway moved them: (when, step), from the rollout's own history (a
    // poll can see a step late on a loaded machine; the history says when it was taken).
    let mut seen: Vec<(Instant, u64)> = Vec::new();
    for m in last["history"].as_array().into_iter().flatten() {
        let step = m["step"].as_u64().unwrap_or(0);
        if seen.last().map(|s| s.1) != Some(step) {
            seen.push((
                clocks.instant_of(m["at"].as_str().unwrap_or_default()),
                step,
            ));
        }
    }
    let steps: Vec<u64> = seen.iter().map(|s| s.1).collect();
    assert!(steps.ends_with(&[1, 2, 3]), "steps moved: {steps:?}");
    // The realised split of each step, its edges left out (the table swaps a few ms after the
    // move is decided; answers in flight).
    let share = |step: u64| -> f64 {
        let i = seen.iter().position(|s| s.1 == step).expect("step seen");
        let from = seen[i].0 + Duration::from_millis(150);
        let to = seen.get(i + 1).map_or(Instant::now(), |s| s.0) - Duration::from_millis(100);
        let in_step: Vec<Sample> = (samples.iter())
            .filter(|s| s.at >= from && s.at < to)
            .cloned()
            .collect();
        assert!(
            in_step.len() >= 30,
            "step {step}: only {} answers",
            in_step.len()
        );
        untagged(&in_step, "canary") as f64 / in_step.len() as f64
    };
    for (step, want) in [(1, 0.10), (2, 0.50), (3, 1.0)] {
        let got = share(step);
        assert!(
            (got - want).abs() <= 0.05,
            "step {step}: canary share {got:.3}, expected {want}"
        );
    }
    // Each step is a version with trigger rollout, in /versions and the audit log.
    let versions = gw.admin_get("/versions").await;
    let rollout_versions = (versions["versions"].as_array().expect("list").iter())
        .filter(|v| v["trigger"] == "rollout")
        .count();
    assert_eq!(rollout_versions, 3, "{versions:#}");
    let audit = gw.config().audit_records();
    let steps_audited: Vec<u64> = (audit.iter())
        .filter(|r| r["trigger"] == "rollout" && r["result"] == "applied")
        .map(|r| r["step"].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(steps_audited, vec![1, 2, 3], "{audit:#?}");
    let diffs: Vec<String> = (audit.iter())
        .filter(|r| r["trigger"] == "rollout")
        .flat_map(|r| r["diff"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    assert!(
        diffs.iter().any(|d| d.contains("canary 0% -> ")),
        "{diffs:?}"
    );
    let metrics = Req::get("/metrics").send(gw.admin_addr()).await.text();
    let text = routes(&stable, &canary, QUICK, "");
    // The file edited to match the final weights: still succeeded, nothing restarts.
    let v = gw.version().await;
    let matched = text
        .replace(
            "{ upstream: stable, weight: 100 }",
            "{ upstream: stable, weight: 0 }",
        )
        .replace(
            "{ upstream: canary, weight: 0 }",
            "{ upstream: canary, weight: 1 }",
        );
    gw.config().write_and_rename("routes.yaml", &matched);
    gw.wait_for_status(Duration::from_secs(10), "the edit", |s| {
        s["version"].as_u64() > Some(v)
    })
    .await;
    let r = judged(&gw, "shop", 2).await;
    assert_eq!(r["state"], "succeeded", "{r:#}");
    assert_eq!(r["table_differs_from_file"], false, "{r:#}");
    assert_eq!(r["table_canary_share"], 100.0, "{r:#}");
    for line in [
        "dyegate_rollout_canary_share{route=\"shop\"} 100",
        "dyegate_rollout_step{route=\"shop\"} 3",
        "dyegate_rollout_state{route=\"shop\",state=\"succeeded\"} 1",
        "dyegate_rollout_state{route=\"shop\",state=\"progressing\"} 0",
        "dyegate_rollout_transitions_total{route=\"shop\",to=\"succeeded\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_answering_500_to_30_percent_is_taken_to_0_within_window_plus_a_second() {
    let fields = "steps: [50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 20, max_error_rate: 0.05 }";
    let (took, r, samples, tagged, gw, breach) =
        break_canary(fields, Fault::FailTenths(3), 4).await;
    assert!(
        took <= Duration::from_millis(2000) + SLACK,
        "failed {took:?} after the breach\n{r:#}"
    );
    assert_eq!(r["step"], 0);
    assert_eq!(r["canary_share"], 0.0, "{r:#}");
    assert_eq!(r["table_canary_share"], 0.0, "{r:#}");
    // No untagged request reaches the canary once it is failed.
    let failed_at = breach + took;
    let after: Vec<Sample> = samples
        .iter()
        .filter(|s| s.at > failed_at)
        .cloned()
        .collect();
    assert!(after.len() > 20, "{} answers after the abort", after.len());
    assert_eq!(untagged(&after, "canary"), 0);
    // Tagged requests reach the canary before, during and after the abort.
    let before = tagged.iter().filter(|s| s.at < breach).count();
    let later = tagged.iter().filter(|s| s.at > failed_at).count();
    assert!(
        before > 5 && later > 5,
        "tagged answers: {before} before, {later} after"
    );
    assert!(
        tagged.iter().all(|s| s.upstream == "canary"),
        "a tagged request left the canary"
    );
    // The audit line names the gate and the figures.
    let audit = gw.config().audit_records();
    let abort = (audit.iter())
        .find(|r| r["trigger"] == "rollout" && r["step"] == 0 && r["result"] == "applied")
        .unwrap_or_else(|| panic!("no abort in the audit log: {audit:#?}"));
    let reason = abort["rollout"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("gate error_rate breached: "),
        "{abort:#}"
    );
    assert!(
        reason.contains("requests") && reason.contains("errors"),
        "{abort:#}"
    );
    assert_eq!(abort["rollout"]["state"], "failed");
    // A failure is logged at WARN, a start at INFO.
    let logs = gw.logs();
    assert!(
        logs.contains("WARN  dyegate::rollout::controller] rollout shop: step 0 (canary 0%), failed: gate error_rate breached"),
        "{logs}"
    );
    assert!(
        logs.contains("INFO  dyegate::rollout::controller] rollout of shop started (startup)"),
        "{logs}"
    );
    let served = untagged(
        &(samples.iter())
            .filter(|s| s.at >= breach && s.at <= failed_at)
            .cloned()
            .collect::<Vec<_>>(),
        "canary",
    );
    println!("breach to share 0: {took:?}; canary answers in between: {served}");
    let metrics = Req::get("/metrics").send(gw.admin_addr()).await.text();
    assert!(
        metrics.contains("dyegate_rollout_state{route=\"shop\",state=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dyegate_rollout_gate_breaches_total{gate=\"error_rate\",route=\"shop\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_canary_is_taken_to_0_by_the_latency_gate() {
    let fields = "steps: [50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 10, max_latency_ms: 100, latency_percentile: 90 }";
    let (took, r, _, _, gw, _) = break_canary(fields, Fault::Delay(400), 12).await;
    assert!(
        took <= Duration::from_millis(2000) + SLACK + Duration::from_millis(400),
        "failed {took:?} after the slowdown\n{r:#}"
    );
    assert_eq!(r["table_canary_share"], 0.0, "{r:#}");
    let audit = gw.config().audit_records();
    assert!(
        audit.iter().any(|r| r["trigger"] == "rollout"
            && r["step"] == 0
            && r["rollout"]["reason"]
                .as_str()
                .is_some_and(|s| s.starts_with("gate latency breached"))),
        "{audit:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn low_traffic_waits_and_neither_promotes_nor_fails() {
    let (stable, canary) = upstreams();
    // Every canary answer fails, but 20 requests a second never make the 1000 the gate wants.
    canary.set_fault(Fault::FailTenths(10));
    let fields = "steps: [50, 100], step_ms: 500, gates: { window_ms: 1000, min_requests: 1000, max_error_rate: 0.05 }";
    let gw = Dyegate::start(&routes(&stable, &canary, fields, ""));
    let traffic = Traffic::start(gw.addr(), 1, Duration::from_millis(50), vec![]);
    wait_rollout(
        &gw,
        Duration::from_secs(20),
        "waiting",
        is("waiting_for_traffic", 1),
    )
    .await;
    // Judged again and again past step_ms (500 ms): still waiting.
    let r = judged(&gw, "shop", 4).await;
    assert_eq!(r["state"], "waiting_for_traffic", "{r:#}");
    assert_eq!(r["step"], 1, "{r:#}");
    assert_eq!(r["last_evaluation"]["enough_traffic"], false, "{r:#}");
    let samples = traffic.stop().await;
    assert!(
        untagged(&samples, "canary") > 10,
        "the canary got no traffic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_before_waits_for_promote_and_the_controls_work_by_cli_and_api() {
    let (stable, canary) = upstreams();
    let fields = "steps: [10, 50, 100], step_ms: 1000, pause_before: [50], gates: { window_ms: 1000, min_requests: 5, max_error_rate: 0.05 }";
    let gw = Dyegate::start(&routes(&stable, &canary, fields, ""));
    let traffic = Traffic::start(gw.addr(), 4, Duration::from_millis(4), vec![]);
    wait_rollout(
        &gw,
        Duration::from_secs(20),
        "approval",
        is("awaiting_approval", 1),
    )
    .await;
    // Judged past step_ms (1 s): still awaiting approval.
    let r = judged(&gw, "shop", 3).await;
    assert!(is("awaiting_approval", 1)(&r), "{r:#}");

    // CLI promote: step 2.
    let out = gw.config().cli(&["rollout", "promote", "shop"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(is("progressing", 2)(&rollout(&gw).await));
    // API pause: held on step 2 past step_ms.
    let (code, body) = gw.admin_post("/rollouts/shop/pause", None).await;
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["state"], "paused");
    let r = judged(&gw, "shop", 3).await;
    assert!(is("paused", 2)(&r), "{r:#}");
    // CLI resume, then status by CLI.
    let out = gw.config().cli(&["rollout", "resume", "shop"]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = gw.config().cli(&["rollout", "status", "shop"]);
    let status: Value = serde_json::from_str(&out.stdout).expect("JSON status");
    assert_eq!(status["step"], 2, "{out}");
    // API abort: share 0, and the untagged traffic follows.
    let (code, body) = gw.admin_post("/rollouts/shop/abort", None).await;
    assert_eq!(code, 200, "{body:#}");
    assert!(is("aborted", 0)(&body), "{body:#}");
    let aborted = Instant::now();
    // time is tested: half a second of untagged traffic after the abort, none to the canary.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = traffic.between(aborted + Duration::from_millis(100), Instant::now());
    assert!(!after.is_empty());
    assert_eq!(untagged(&after, "canary"), 0);
    // A promote of an aborted rollout is refused; resume starts it again; promote --to-end.
    let out = gw.config().cli(&["rollout", "promote", "shop"]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("resume it first") || out.stderr.contains("resume it first"),
        "{out}"
    );
    let out = gw.config().cli(&["rollout", "resume", "shop"]);
    assert_eq!(out.code, Some(0), "{out}");
    wait_rollout(&gw, Duration::from_secs(10), "step 1 again", |r| {
        r["step"] == 1
    })
    .await;
    let (code, body) = gw
        .admin_post("/rollouts/shop/promote?to_end=true", None)
        .await;
    assert_eq!(code, 200, "{body:#}");
    assert!(is("succeeded", 3)(&body), "{body:#}");
    assert_eq!(body["table_canary_share"], 100.0, "{body:#}");
    let list = gw.admin_get("/rollouts").await;
    assert_eq!(list["rollouts"][0]["route"], "shop", "{list:#}");
    traffic.stop().await;

    // Every control is audited with the client's address.
    let audit = gw.config().audit_records();
    let controls: Vec<&Value> = (audit.iter())
        .filter(|r| {
            r["trigger"] == "rollout"
                && (r["control"].is_string() || r["rollout"]["by"] == "control")
        })
        .collect();
    assert!(controls.len() >= 6, "{controls:#?}");
    assert!(
        controls.iter().all(|r| r["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:"))),
        "{controls:#?}"
    );
    assert!(
        controls.iter().any(|r| r["control"] == "pause"),
        "{controls:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sticky_users_on_the_canary_stay_on_it_as_the_step_grows() {
    let (stable, canary) = upstreams();
    let fields = "steps: [10, 50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 1, max_error_rate: 0.5 }";
    let gw = Dyegate::start(&routes(
        &stable,
        &canary,
        fields,
        "    sticky: header:x-user\n",
    ));
    wait_rollout(&gw, Duration::from_secs(20), "step 1", |r| r["step"] == 1).await;
    let on_canary = |gw_addr| async move {
        let mut users = Vec::new();
        for u in 0..200 {
            let resp = Req::get("/")
                .header("x-user", &format!("user-{u}"))
                .send(gw_addr)
                .await;
            if resp.upstream() == Some("canary") {
                users.push(u);
            }
        }
        users
    };
    let mut before = on_canary(gw.addr()).await;
    assert!(
        (5..=40).contains(&before.len()),
        "{} of 200 users at 10%",
        before.len()
    );
    for step in [2, 3] {
        let (code, _) = gw.admin_post("/rollouts/shop/promote", None).await;
        assert_eq!(code, 200);
        let now = on_canary(gw.addr()).await;
        assert!(
            before.iter().all(|u| now.contains(u)),
            "step {step}: a user left the canary"
        );
        assert!(now.len() > before.len(), "step {step}: {} users", now.len());
        before = now;
    }
    assert_eq!(before.len(), 200);
}
