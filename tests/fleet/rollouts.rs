//! One rollout for a fleet of gateways that follow one table in etcd: real etcd, three real
//! gateways (`gw1`..`gw3`), real upstreams. The plan is pushed with the table; one driver
//! judges the sum of the gateways' windows and writes each move to etcd; every step and abort
//! is one revision every gateway serves as one version. Figures (breach to every gateway at 0,
//! failover): benches/rollout/fleet.rs.

use std::time::{Duration, Instant};

use dyegate_suite::etcd::rollout::{RolloutFleet, LEASE_TTL};
use dyegate_suite::traffic::{Sample, Traffic};
use dyegate_suite::upstream::Fault;
use dyegate_suite::wait::poll_until;
use serde_json::Value;

fn traffic_through(fleet: &RolloutFleet, clients: usize) -> Vec<Traffic> {
    (fleet.running())
        .map(|(_, gw)| Traffic::start(gw.addr(), clients, Duration::from_millis(5), vec![]))
        .collect()
}

/// Gateway `i`'s rollout versions once the last one recorded is of `step` (a version is recorded
/// just after it serves, so `/status` can show it before `/versions` does).
async fn recorded(fleet: &RolloutFleet, i: usize, step: u64) -> Vec<(String, u64)> {
    poll_until(
        Duration::from_secs(10),
        || fleet.rollout_versions(i),
        |v| v.last().map(|v| v.1) == Some(step),
    )
    .await
    .unwrap_or_else(|v| panic!("gw{}: no version of step {step} recorded: {v:?}", i + 1))
}

fn at(state: &'static str, step: u64, share: f64) -> impl Fn(&Value) -> bool {
    move |r| r["state"] == state && r["step"] == step && r["table_canary_share"] == share
}

async fn stop_all(traffic: Vec<Traffic>) -> Vec<Vec<Sample>> {
    let mut out = Vec::new();
    for t in traffic {
        out.push(t.stop().await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_ramp_one_healthy_canary_to_100_with_one_version_per_step() {
    let fleet = RolloutFleet::start(
        3,
        "steps: [10, 50, 100], step_ms: 3000, gates: { window_ms: 2000, min_requests: 20, max_error_rate: 0.05 }",
    );
    let traffic = traffic_through(&fleet, 2);
    // What each gateway serves, polled: (sent, answered, step whose share its table has).
    let mut polls: Vec<Vec<(Instant, Instant, u64)>> = vec![Vec::new(); 3];
    let want_share = |step: u64| [0.0, 10.0, 50.0, 100.0][step as usize];
    // One poll of the three gateways: (gateway, sent, answered, status).
    let poll = || async {
        let mut out = Vec::new();
        for (i, gw) in fleet.running() {
            let sent = Instant::now();
            let r = gw.admin_get("/rollouts/shop").await;
            out.push((i, sent, Instant::now(), r));
        }
        out
    };
    let succeeded = dyegate_suite::poll_until(Duration::from_secs(90), poll, |all| {
        for (i, sent, answered, r) in all {
            let step = r["step"].as_u64().unwrap_or(0);
            if r["table_canary_share"].as_f64() == Some(want_share(step)) {
                polls[*i].push((*sent, *answered, step));
            }
        }
        (all.iter()).all(|(.., r)| r["state"] == "succeeded" && r["table_canary_share"] == 100.0)
    })
    .await;
    if let Err(last) = succeeded {
        panic!(
            "not succeeded everywhere within 90 s: {last:#?}\n{}",
            fleet.gw(0).logs()
        );
    }
    // time is tested: traffic on the last step, for its realised split below.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let last = Instant::now();
    let samples = stop_all(traffic).await;
    // One version per step, the same on every gateway: the step's etcd revision.
    let versions = [
        fleet.rollout_versions(0).await,
        fleet.rollout_versions(1).await,
        fleet.rollout_versions(2).await,
    ];
    let steps: Vec<u64> = versions[0].iter().map(|v| v.1).collect();
    assert_eq!(steps, [1, 2, 3], "{versions:?}");
    assert_eq!(versions[0], versions[1], "{versions:?}");
    assert_eq!(versions[0], versions[2], "{versions:?}");
    // The canary's share realised at each gateway matches each step: an answer counts for a
    // step when a poll answered before it was sent and a poll sent after it arrived both saw
    // that step (the table only moves forward).
    for i in 0..3 {
        let step_at = |t: Instant| -> Option<u64> {
            let before = polls[i]
                .iter()
                .rev()
                .find(|p| p.1 + Duration::from_millis(50) <= t)?;
            let after = match polls[i].iter().find(|p| p.0 >= t) {
                Some(p) => p.2,
                None if t < last => 3,
                None => return None,
            };
            (before.2 == after).then_some(after)
        };
        for step in 1..=3 {
            let in_step: Vec<&Sample> = (samples[i].iter())
                .filter(|s| step_at(s.at) == Some(step))
                .collect();
            assert!(
                in_step.len() >= 30,
                "gw{} step {step}: only {} answers",
                i + 1,
                in_step.len()
            );
            let canary = in_step.iter().filter(|s| s.upstream == "canary").count();
            let share = canary as f64 / in_step.len() as f64;
            let want = want_share(step) / 100.0;
            assert!(
                (share - want).abs() <= 0.06,
                "gw{} step {step}: canary share {share:.3} of {}, expected {want}",
                i + 1,
                in_step.len()
            );
        }
    }
    // The fleet's status on any gateway: one driver, three live gateways, each one's part.
    let r = fleet.gw(2).admin_get("/rollouts/shop").await;
    assert_eq!(
        r["fleet"]["live_gateways"],
        serde_json::json!(["gw1", "gw2", "gw3"]),
        "{r:#}"
    );
    assert!(r["fleet"]["driver"].is_string(), "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_canary_is_taken_to_0_on_every_gateway_by_one_revision() {
    let fleet = RolloutFleet::start(
        3,
        "steps: [50, 100], step_ms: 600000, gates: { window_ms: 3000, min_requests: 20, max_error_rate: 0.05 }",
    );
    let traffic = traffic_through(&fleet, 2);
    // Judged on the sum of every gateway's window, each with a part of the canary's traffic (a
    // gateway can publish its window of the new step before its first canary answer).
    let summed = |r: &Value| {
        (r["fleet"]["windows"].as_array()).is_some_and(|parts| {
            parts.len() == 3 && (parts.iter()).all(|p| p["canary_requests"].as_u64() > Some(0))
        })
    };
    fleet
        .wait_all(
            Duration::from_secs(30),
            "step 1 everywhere, judged on the fleet's three parts of the canary's traffic",
            |r| at("progressing", 1, 50.0)(r) && summed(r),
        )
        .await;
    // A version is recorded just after it serves: wait for gateway 1's record of the step.
    let step_1 = recorded(&fleet, 0, 1).await;
    fleet.canary.set_fault(Fault::Status500);
    let broken = Instant::now();
    let after = fleet
        .wait_all(
            Duration::from_secs(30),
            "the abort everywhere",
            at("failed", 0, 0.0),
        )
        .await;
    let took = broken.elapsed();
    let samples = stop_all(traffic).await;
    eprintln!("canary broken -> every gateway at 0: {took:?}");
    // One revision for the abort, the same version on every gateway, after the step's.
    let versions = [
        recorded(&fleet, 0, 0).await,
        recorded(&fleet, 1, 0).await,
        recorded(&fleet, 2, 0).await,
    ];
    assert_eq!(versions[0].len(), step_1.len() + 1, "{versions:?}");
    assert_eq!(versions[0].last().map(|v| v.1), Some(0), "{versions:?}");
    assert_eq!(versions[0], versions[1]);
    assert_eq!(versions[0], versions[2]);
    let status = fleet.versions().await;
    assert!(status.iter().all(|s| *s == status[0]), "{status:?}");
    // The order of events on each gateway: step 1 applied, then the abort with the breach.
    for (i, gw) in fleet.running() {
        let audit: Vec<Value> = (gw.config().audit_records().into_iter())
            .filter(|r| r["trigger"] == "rollout" && r["result"] == "applied")
            .collect();
        let steps: Vec<u64> = audit
            .iter()
            .map(|r| r["step"].as_u64().unwrap_or(99))
            .collect();
        assert!(steps.ends_with(&[1, 0]), "gw{}: {audit:#?}", i + 1);
        let abort = &audit[audit.len() - 1]["rollout"];
        assert_eq!(abort["state"], "failed", "{abort:#}");
        let reason = abort["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("gate error_rate breached"), "{abort:#}");
        // Untagged traffic reached the canary before the abort, never once every gateway was
        // at 0 (a second of slack for answers in flight).
        let canary = |from: Instant, to: Instant| {
            (samples[i].iter())
                .filter(|s| s.upstream == "canary" && s.at >= from && s.at < to)
                .count()
        };
        let settled = broken + took + Duration::from_secs(1);
        assert!(
            canary(broken - Duration::from_secs(60), broken) > 0,
            "gw{}",
            i + 1
        );
        assert_eq!(canary(settled, Instant::now()), 0, "gw{}", i + 1);
    }
    assert!(after
        .iter()
        .all(|r| r["fleet"]["live_gateways"].as_array().map(Vec::len) == Some(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_traffic_through_one_gateway_the_fleet_still_progresses_never_before_min_requests() {
    let fleet = RolloutFleet::start(
        3,
        "steps: [10, 50, 100], step_ms: 3000, gates: { window_ms: 3000, min_requests: 40, max_error_rate: 0.05 }",
    );
    // No traffic at all: step 1, and however long, never a promotion.
    fleet
        .wait_all(
            Duration::from_secs(30),
            "step 1 everywhere",
            at("waiting_for_traffic", 1, 10.0),
        )
        .await;
    let r = dyegate_suite::rollout::judged(fleet.gw(1), "shop", 4).await;
    assert_eq!(
        (r["state"].as_str(), r["step"].as_u64()),
        (Some("waiting_for_traffic"), Some(1)),
        "{r:#}"
    );
    // Traffic through gw1 alone: summed over the fleet (the others add zero), it promotes.
    let traffic = Traffic::start(fleet.gw(0).addr(), 2, Duration::from_millis(5), vec![]);
    let judged_on_three = fleet
        .wait_all(
            Duration::from_secs(30),
            "step 2, judged on three windows",
            |r| r["step"] == 2 && r["fleet"]["windows"].as_array().map(Vec::len) == Some(3),
        )
        .await;
    let done = fleet
        .wait_all(
            Duration::from_secs(60),
            "success",
            at("succeeded", 3, 100.0),
        )
        .await;
    drop(traffic.stop().await);
    // Each promotion was judged on at least min_requests canary requests over the fleet.
    let history = done[2]["history"].as_array().cloned().unwrap_or_default();
    let promoted: Vec<u64> = (history.iter())
        .filter(|m| m["by"] == "rollout" && m["state"] == "progressing")
        .map(|m| m["step"].as_u64().unwrap_or(0))
        .collect();
    assert!(promoted.ends_with(&[2, 3]), "{history:#?}");
    let audit = fleet.gw(2).config().audit_records();
    assert!(
        audit
            .iter()
            .any(|r| r["trigger"] == "rollout" && r["step"] == 3),
        "{audit:#?}"
    );
    let windows = judged_on_three[1]["fleet"]["windows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let quiet: Vec<&Value> = windows.iter().filter(|w| w["gateway"] != "gw1").collect();
    assert_eq!(quiet.len(), 2, "{windows:#?}");
    assert!(quiet.iter().all(|w| w["requests"] == 0), "{windows:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_driver_is_killed_another_gateway_drives_on_from_the_same_step() {
    let mut fleet = RolloutFleet::start(
        3,
        "steps: [10, 50, 100], step_ms: 8000, gates: { window_ms: 2000, min_requests: 20, max_error_rate: 0.05 }",
    );
    let mut traffic: Vec<Option<Traffic>> =
        traffic_through(&fleet, 2).into_iter().map(Some).collect();
    let before = fleet
        .wait_all(
            Duration::from_secs(30),
            "step 1 everywhere",
            at("progressing", 1, 10.0),
        )
        .await;
    let started = before[0]["history"].clone();
    let driver = fleet.driver(0).await;
    let d = RolloutFleet::index_of(&driver);
    if let Some(t) = traffic[d].take() {
        drop(t.stop().await);
    }
    fleet.kill(d);
    let killed = Instant::now();
    // Another gateway drives within the lease's TTL and a round (generous on a loaded machine).
    let other = (0..3).find(|i| *i != d).unwrap_or(0);
    let r = dyegate_suite::poll_until(
        LEASE_TTL + Duration::from_secs(15),
        || fleet.gw(other).admin_get("/rollouts/shop"),
        |r| r["fleet"]["driver"].is_string() && r["fleet"]["driver"] != driver.as_str(),
    )
    .await
    .unwrap_or_else(|r| panic!("no new driver: {r:#}\n{}", fleet.gw(other).logs()));
    eprintln!(
        "driver {driver} killed -> {} drives: {:?}",
        r["fleet"]["driver"],
        killed.elapsed()
    );
    // The step was not restarted: the same moves so far, then on to success.
    assert_eq!(r["step"], 1, "{r:#}");
    let history = r["history"].as_array().cloned().unwrap_or_default();
    let so_far = started.as_array().map_or(0, Vec::len);
    assert_eq!(
        history[..so_far.min(history.len())],
        started.as_array().cloned().unwrap_or_default()[..],
        "{r:#}"
    );
    let done = fleet
        .wait_all(
            Duration::from_secs(90),
            "success",
            at("succeeded", 3, 100.0),
        )
        .await;
    for t in traffic.into_iter().flatten() {
        drop(t.stop().await);
    }
    // No step taken twice: one version per step on the gateways that lived, the same ones. The
    // gateways start one after another: one that came up after the driver applied step 1 loaded
    // step 1 with the table (its startup version), and has steps 2 and 3 only.
    let lived: Vec<usize> = fleet.running().map(|(i, _)| i).collect();
    let a = fleet.rollout_versions(lived[0]).await;
    let b = fleet.rollout_versions(lived[1]).await;
    for v in [&a, &b] {
        let steps: Vec<u64> = v.iter().map(|v| v.1).collect();
        assert!(steps == [1, 2, 3] || steps == [2, 3], "{a:?} {b:?}");
    }
    let (longer, shorter) = if a.len() >= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert_eq!(
        longer[longer.len() - shorter.len()..],
        shorter[..],
        "{a:?} {b:?}"
    );
    let applied: Vec<u64> = (done[0]["history"].as_array().into_iter().flatten())
        .filter(|m| m["state"] == "progressing" && m["by"] == "rollout")
        .map(|m| m["step"].as_u64().unwrap_or(0))
        .collect();
    let mut distinct = applied.clone();
    distinct.dedup();
    assert_eq!(distinct, [1, 2, 3], "{applied:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_etcd_is_away_nothing_promotes_a_breach_goes_to_0_locally_and_the_fleet_aborts_after()
{
    let mut fleet = RolloutFleet::start(
        3,
        "steps: [50, 100], step_ms: 3000, gates: { window_ms: 60000, min_requests: 30, max_error_rate: 0.05 }",
    );
    // On step 1, without traffic yet: nothing to promote on.
    fleet
        .wait_all(Duration::from_secs(30), "step 1 everywhere", |r| {
            at("waiting_for_traffic", 1, 50.0)(r)
                && r["fleet"]["live_gateways"].as_array().map(Vec::len) == Some(3)
        })
        .await;
    let fleet_version = fleet.versions().await;
    fleet.etcd.stop();
    fleet
        .wait_all(Duration::from_secs(30), "etcd out of reach", |r| {
            r["fleet"]["connected"] == false
        })
        .await;
    // Traffic through gw1 on a healthy canary for longer than step_ms: no promotion anywhere.
    let traffic = Traffic::start(fleet.gw(0).addr(), 2, Duration::from_millis(5), vec![]);
    // time is tested: a step's step_ms (3 s) and more with traffic, and no etcd to promote with.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    for (i, gw) in fleet.running() {
        let r = gw.admin_get("/rollouts/shop").await;
        assert!(at("waiting_for_traffic", 1, 50.0)(&r), "gw{}: {r:#}", i + 1);
    }
    assert_eq!(fleet.versions().await, fleet_version);
    // The canary fails: gw1, judging its own window alone, takes its share to 0 locally.
    fleet.canary.set_fault(Fault::Status500);
    let broken = Instant::now();
    let r = dyegate_suite::poll_until(
        Duration::from_secs(20),
        || fleet.gw(0).admin_get("/rollouts/shop"),
        |r| r["table_canary_share"] == 0.0 && r["fleet"]["local_abort"].is_object(),
    )
    .await
    .unwrap_or_else(|r| panic!("gw1 kept its canary: {r:#}\n{}", fleet.gw(0).logs()));
    eprintln!("canary broken -> gw1 at 0 alone: {:?}", broken.elapsed());
    assert_eq!(
        r["fleet"]["local_abort"]["version"],
        format!("{}.1", fleet_version[0]["version"]),
        "{r:#}"
    );
    let status = fleet.gw(0).status().await;
    assert_eq!(
        (status["divergent"].as_bool(), status["local"].as_u64()),
        (Some(true), Some(1)),
        "{status:#}"
    );
    for i in [1, 2] {
        let r = fleet.gw(i).admin_get("/rollouts/shop").await;
        assert_eq!(r["table_canary_share"], 50.0, "gw{}: {r:#}", i + 1);
    }
    assert!(fleet
        .gw(0)
        .stderr()
        .contains("canary share 0 on this gateway alone"));
    // etcd returns: gw1 reports, the driver judges the fleet's window and aborts everywhere.
    fleet.etcd.start_again();
    let after = fleet
        .wait_all(
            Duration::from_secs(60),
            "the fleet's abort",
            at("failed", 0, 0.0),
        )
        .await;
    drop(traffic.stop().await);
    let versions = fleet.versions().await;
    assert!(
        versions
            .iter()
            .all(|v| *v == versions[0] && v["local"].is_null()),
        "{versions:?}"
    );
    let status = fleet
        .gw(0)
        .wait_for_status(Duration::from_secs(10), "divergence cleared", |s| {
            s["divergent"] == false
        })
        .await;
    assert_eq!(status["version"], versions[0]["version"]);
    let reason = (after[0]["history"].as_array().into_iter().flatten())
        .rev()
        .find_map(|m| m["reason"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(reason.starts_with("gate error_rate breached"), "{after:#?}");
    // The local change is in gw1's history and audit, by `local`.
    let audit = fleet.gw(0).config().audit_records();
    let local = audit
        .iter()
        .find(|r| r["version_after"] == format!("{}.1", fleet_version[0]["version"]));
    assert_eq!(
        local.map(|r| r["rollout"]["by"].clone()),
        Some("local".into()),
        "{audit:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_from_another_gateway_s_cli_stops_the_driver_and_is_audited_with_its_identity() {
    const TOKEN: &str = "bot-5e1f0c7a-token";
    let fleet = RolloutFleet::start_with(
        3,
        "steps: [10, 50, 100], step_ms: 4000, gates: { window_ms: 2000, min_requests: 20, max_error_rate: 0.05 }",
        |_, cfg| {
            cfg.write("bot.token", TOKEN);
            let admin = cfg.admin_addr();
            let text = cfg.gateway_text().replacen(
                &format!("admin: {{ listen: \"{admin}\" }}"),
                &format!("admin:\n  listen: \"{admin}\"\n  tokens:\n    - {{ name: release-bot, token_file: bot.token, role: write }}"),
                1,
            );
            cfg.write("gateway.yaml", &text);
            cfg
        },
    );
    let traffic = traffic_through(&fleet, 2);
    let token = |r: dyegate_suite::Req| r.header("authorization", &format!("Bearer {TOKEN}"));
    let status = |i: usize| {
        let gw = fleet.gw(i);
        async move {
            let resp = token(dyegate_suite::Req::get("/rollouts/shop"))
                .send(gw.admin_addr())
                .await;
            serde_json::from_slice::<Value>(&resp.body).unwrap_or_default()
        }
    };
    let r = dyegate_suite::poll_until(
        Duration::from_secs(30),
        || status(0),
        |r| r["step"] == 1 && r["fleet"]["driver"].is_string(),
    )
    .await
    .unwrap_or_else(|r| panic!("no step 1: {r:#}\n{}", fleet.gw(0).logs()));
    let driver = RolloutFleet::index_of(r["fleet"]["driver"].as_str().unwrap_or("gw1"));
    let other = (driver + 1) % 3;
    let cfg = fleet.gw(other).config();
    let out = cfg.cli(&["rollout", "pause", "shop", "--token-file", "bot.token"]);
    assert_eq!(out.code, Some(0), "{out}");
    // Every gateway sees it paused, and the driver moves it no more (step_ms passes, judged on).
    for i in 0..3 {
        let r = dyegate_suite::poll_until(
            Duration::from_secs(20),
            || status(i),
            |r| r["state"] == "paused",
        )
        .await
        .unwrap_or_else(|r| panic!("gw{} not paused: {r:#}", i + 1));
        assert_eq!(r["step"], 1, "{r:#}");
    }
    let seen = |r: &Value| r["last_evaluation"]["at"].clone();
    let mut stamps = vec![seen(&status(driver).await)];
    let judged = dyegate_suite::poll_until(
        Duration::from_secs(30),
        || status(driver),
        |r| {
            if !stamps.contains(&seen(r)) {
                stamps.push(seen(r));
            }
            stamps.len() > 6
        },
    )
    .await
    .unwrap_or_else(|r| panic!("not judged: {r:#}"));
    assert_eq!(
        (judged["state"].as_str(), judged["step"].as_u64()),
        (Some("paused"), Some(1)),
        "{judged:#}"
    );
    assert_eq!(
        judged["history"]
            .as_array()
            .and_then(|h| h.last())
            .map(|m| m["by"].clone()),
        Some("control".into())
    );
    // Audited on the gateway the control was made on, with the admin identity.
    let audit = cfg.audit_records();
    let line = audit.iter().find(|r| r["control"] == "pause");
    let line = line.unwrap_or_else(|| panic!("no pause in {audit:#?}"));
    assert_eq!(line["identity"], "release-bot", "{line:#}");
    assert_eq!(
        line["fleet"]["gateway"],
        format!("gw{}", other + 1),
        "{line:#}"
    );
    // A resume from yet another gateway applies the step again everywhere, one version.
    let third = (other + 1) % 3;
    let (code, body) = {
        let resp = token(dyegate_suite::Req::post("/rollouts/shop/resume"))
            .send(fleet.gw(third).admin_addr())
            .await;
        (resp.status, resp.text())
    };
    assert_eq!(code, http::StatusCode::OK, "{body}");
    for i in 0..3 {
        let r = dyegate_suite::poll_until(
            Duration::from_secs(20),
            || status(i),
            |r| r["state"] != "paused",
        )
        .await;
        r.unwrap_or_else(|r| panic!("gw{} still paused: {r:#}", i + 1));
    }
    for t in traffic {
        drop(t.stop().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_driver_handing_over_in_a_binary_upgrade_gives_its_lease_up() {
    use dyegate_suite::etcd::rollout::push;
    use dyegate_suite::upgrade::{get_once, Upgradable};
    use dyegate_suite::{EtcdServer, GatewayConfig};
    // A minute's lease: a driver lost by expiry would be replaced after a minute, a driver that
    // hands over gives its lease up and another process drives at its next round.
    let etcd = EtcdServer::start();
    let (stable, canary) = dyegate_suite::rollout::upstreams();
    let table = dyegate_suite::rollout::routes(
        &stable,
        &canary,
        "steps: [10, 50, 100], step_ms: 600000, gates: { max_error_rate: 0.05 }",
        "",
    );
    let config = |id: &str| {
        let source = dyegate_suite::etcd::rollout::source_yaml(&etcd, id)
            .replace("lease_ttl_ms: 3000", "lease_ttl_ms: 60000");
        GatewayConfig::new(&table).with_source(&source)
    };
    let first = config("gw1");
    push(&first, &table);
    let gws = [
        Upgradable::start(first).await,
        Upgradable::start(config("gw2")).await,
    ];
    let rollout = |i: usize| {
        let admin = gws[i].admin_addr();
        async move {
            get_once(admin, "/rollouts/shop")
                .await
                .map(|(_, r)| r)
                .unwrap_or_default()
        }
    };
    let mut driving = None;
    for i in 0..2 {
        let r = dyegate_suite::poll_until(
            Duration::from_secs(30),
            || rollout(i),
            |r| r["step"] == 1 && r["fleet"]["driver"].is_string(),
        )
        .await
        .unwrap_or_else(|r| panic!("gw{}: no step 1: {r:#}", i + 1));
        if r["fleet"]["driving"] == true {
            driving = Some(i);
        }
    }
    let d = driving.unwrap_or_else(|| panic!("no gateway drives\n{}", gws[0].logs()));
    gws[d].upgrade_ok().await;
    // Within well under the lease's minute, a process drives again: the old one gave it up.
    let someone = || async { [rollout(0).await, rollout(1).await] };
    let after = dyegate_suite::poll_until(Duration::from_secs(30), someone, |rs| {
        rs.iter().any(|r| r["fleet"]["driving"] == true)
    })
    .await
    .unwrap_or_else(|rs| panic!("nobody drives: {rs:#?}\n{}", gws[d].logs()));
    assert!(
        after
            .iter()
            .all(|r| r["step"] == 1 && r["state"] != "pending"),
        "{after:#?}"
    );
    assert!(
        gws[d]
            .gateway()
            .stderr()
            .contains("rollouts: gave up this gateway's lease"),
        "{}",
        gws[d].logs()
    );
}
