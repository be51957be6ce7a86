//! The shadow stage of a rollout (issue 31), end to end with the real binary: before step 1 the
//! canary gets copies of the route's requests only (`x-dyegate-mirror: 1`), never an untagged
//! request; a canary that fails on the copies is failed in `shadowing`, a healthy one goes on to
//! step 1 at the plan's share with the stage's mirror taken away. Counted at the canary upstream
//! by the marker header.

use std::time::Duration;

use dyegate_suite::rollout::*;
use dyegate_suite::traffic::Traffic;
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{poll_until, Dyegate, Req};
use serde_json::Value;

/// [`QUICK`]'s steps after a shadow stage of `duration_ms` mirroring every request, judged on
/// at least 20 of the canary's answers with at most 5% failures and at most 10% answers that
/// differ from stable's.
fn shadowed(duration_ms: u64) -> String {
    format!("{QUICK}, shadow: {{ percent: 100, duration_ms: {duration_ms}, gates: {{ min_requests: 20, max_error_rate: 0.05, max_mismatch_rate: 0.1 }} }}")
}

/// The states of the rollout's moves, in order.
fn states(r: &Value) -> Vec<String> {
    (r["history"].as_array().into_iter().flatten())
        .map(|m| m["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Requests the canary received without the marker: untagged (or tagged) real traffic.
fn unmarked(canary: &FaultyUpstream) -> usize {
    canary.request_count() - canary.marked_count()
}

/// Starts the gateway with a stage far longer than the test (only a breach ends it) and traffic
/// from two clients, and waits for the rollout to fail: its state, the reason of its last move,
/// and what the clients got.
async fn failed_in_the_stage(
    stable: &FaultyUpstream,
    canary: &FaultyUpstream,
) -> (Dyegate, Value, String, Vec<dyegate_suite::traffic::Sample>) {
    let gw = Dyegate::start(&routes(stable, canary, &shadowed(600_000), ""));
    let traffic = Traffic::start(gw.addr(), 2, Duration::from_millis(5), vec![]);
    let failed = wait_rollout(&gw, Duration::from_secs(30), "a failure", |r| {
        r["state"] == "failed"
    })
    .await;
    let samples = traffic.stop().await;
    let reason = (failed["history"].as_array())
        .and_then(|h| h.last())
        .and_then(|m| m["reason"].as_str())
        .unwrap_or_default()
        .to_string();
    (gw, failed, reason, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_failing_on_the_copies_fails_in_shadowing_and_no_user_request_reaches_it() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::Status500);
    let (gw, failed, reason, samples) = failed_in_the_stage(&stable, &canary).await;
    assert!(
        reason.starts_with("shadow gate error_rate breached: 1.0000 > 0.05 (canary's answers to "),
        "{failed:#}"
    );
    assert!(
        reason.ends_with("before any untagged request reached the canary"),
        "{reason}"
    );
    assert_eq!(
        states(&failed),
        ["pending", "shadowing", "failed"],
        "{failed:#}"
    );
    assert_eq!(failed["step"], 0, "{failed:#}");
    assert_eq!(failed["table_canary_share"], 0.0, "{failed:#}");
    assert_eq!(failed["shadow"]["mirroring"], false, "{failed:#}");
    // The canary saw copies, and nothing else; every client was answered by stable.
    assert!(
        canary.marked_count() >= 20,
        "copies: {}",
        canary.marked_count()
    );
    assert_eq!(unmarked(&canary), 0, "untagged requests reached the canary");
    assert!(!samples.is_empty());
    assert!(samples
        .iter()
        .all(|s| s.status == 200 && s.upstream == "stable"));
    let out = gw
        .config()
        .cli(&["rollout", "status", "shop", "-o", "table"]);
    assert_eq!(out.code, Some(0), "{out}");
    for text in [
        "shop: failed, step 0 of 3",
        "shadow stage before step 1: 100% of the requests copied to the canary for 600000 ms\n",
        "the canary's answers to copies: ",
        "shadow gate error_rate breached: 1.0000 > 0.05",
    ] {
        assert!(out.stdout.contains(text), "no {text:?} in\n{out}");
    }
    let metrics = Req::get("/metrics").send(gw.admin_addr()).await.text();
    for line in [
        "dyegate_rollout_transitions_total{route=\"shop\",to=\"shadowing\"} 1",
        "dyegate_rollout_state{route=\"shop\",state=\"failed\"} 1",
        "dyegate_rollout_state{route=\"shop\",state=\"shadowing\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healthy_canary_goes_from_shadowing_to_step_1_at_the_plans_share() {
    // Healthy: the canary's answers are stable's, byte for byte (its own `x-upstream` header
    // is not compared by the stage's entry).
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::AnswerAs("stable"));
    let gw = Dyegate::start(&routes(&stable, &canary, &shadowed(2_000), ""));
    // No traffic yet: the stage cannot end without 20 answers to copies.
    let shadowing = wait_rollout(&gw, Duration::from_secs(20), "the shadow stage", |r| {
        r["state"] == "shadowing"
    })
    .await;
    assert_eq!(shadowing["shadow"]["mirroring"], true, "{shadowing:#}");
    assert_eq!(shadowing["table_canary_share"], 0.0, "{shadowing:#}");
    // Exactly min_requests untagged requests: the stage can end only once the copies of all of
    // them were answered, so each was routed in the stage, at share 0.
    for i in 0..20 {
        let resp = Req::get(&format!("/items/{i}")).send(gw.addr()).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("x-upstream"), Some("stable"), "request {i}");
    }
    let step1 = wait_rollout(&gw, Duration::from_secs(30), "step 1", |r| r["step"] == 1).await;
    let copies = poll_until(
        Duration::from_secs(10),
        || async { canary.marked_count() },
        |n| *n == 20,
    );
    assert_eq!(copies.await, Ok(20), "copies at the canary");
    assert_eq!(
        unmarked(&canary),
        0,
        "untagged requests reached the canary in the stage"
    );
    assert_eq!(step1["state"], "progressing", "{step1:#}");
    assert_eq!(step1["canary_share"], 10.0, "{step1:#}");
    assert_eq!(step1["table_canary_share"], 10.0, "{step1:#}");
    assert_eq!(step1["shadow"]["mirroring"], false, "{step1:#}");
    assert_eq!(
        states(&step1),
        ["pending", "shadowing", "progressing"],
        "{step1:#}"
    );
    let reason = step1["history"][2]["reason"].as_str().unwrap_or_default();
    assert_eq!(
        reason, "shadow stage held for 2000 ms: 20 copies, 0 errors, 0 mismatches of 20 compared",
        "{step1:#}"
    );
    // The versions: the stage's mirror set over the table, then taken away with step 1's weights.
    let versions = gw.admin_get("/versions").await;
    let list = versions["versions"].as_array().cloned().unwrap_or_default();
    let staged = list
        .iter()
        .any(|v| v["overrides"]["shop"]["shadow"]["group"] == "canary");
    assert!(staged, "no version with the stage's mirror: {versions:#}");
    let active = list
        .iter()
        .find(|v| v["active"] == true)
        .expect("an active version");
    assert_eq!(
        active["overrides"]["shop"],
        serde_json::json!([9000, 1000]),
        "{versions:#}"
    );
}

/// A canary that answers every copy 200, but not what stable answers (its bodies name it):
/// healthy by its statuses, failed by the mismatch rate, before any user reached it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_whose_answers_differ_from_stables_fails_on_the_mismatch_rate() {
    let (stable, canary) = upstreams();
    let (gw, failed, reason, samples) = failed_in_the_stage(&stable, &canary).await;
    assert!(
        reason
            .starts_with("shadow gate mismatch_rate breached: 1.0000 > 0.1 (canary's answers to "),
        "{failed:#}"
    );
    assert!(reason.contains(" 0 errors, "), "{reason}");
    assert_eq!(states(&failed), ["pending", "shadowing", "failed"]);
    assert_eq!(unmarked(&canary), 0, "untagged requests reached the canary");
    assert!(canary.marked_count() >= 20);
    assert!(samples
        .iter()
        .all(|s| s.status == 200 && s.upstream == "stable"));
    // The mismatches are listed where a person looks for them.
    let mirrors = gw.admin_get("/mirrors/shop").await;
    assert!(mirrors.to_string().contains("body_mismatch"), "{mirrors:#}");
}
