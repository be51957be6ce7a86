//! A rollout's shadow stage in a fleet (issue 31): real etcd, two real gateways (`gw1`, `gw2`)
//! on one table, real upstreams. Before step 1 every gateway mirrors the route's requests to the
//! canary and gives it share 0 of untagged traffic; the driver judges the stage's gates on the
//! sum of both gateways' tallies of the canary's answers to their copies. `min_requests` (30) is
//! more than one gateway's copies (20): the stage is judged only once both gateways' copies are
//! summed. Untagged requests at the canary are counted by the mirror's marker header.

use std::net::SocketAddr;
use std::time::Duration;

use dyegate_suite::etcd::rollout::RolloutFleet;
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::Req;
use serde_json::Value;

/// Copies sent through each gateway: fewer than the stage's `min_requests`, more than half.
const PER_GATEWAY: u64 = 20;

/// Steps that would take the canary past the stage, after a stage of `duration_ms` mirroring
/// every request, judged on at least 30 answers with at most 5% failures and 10% mismatches.
fn staged(duration_ms: u64) -> String {
    format!(
        "steps: [10, 50, 100], step_ms: 600000, gates: {{ window_ms: 2000, min_requests: 20, max_error_rate: 0.05 }}, shadow: {{ percent: 100, duration_ms: {duration_ms}, gates: {{ min_requests: 30, max_error_rate: 0.05, max_mismatch_rate: 0.1 }} }}"
    )
}

/// Requests the canary received without the marker: untagged (or tagged) real traffic.
fn unmarked(canary: &FaultyUpstream) -> usize {
    canary.request_count() - canary.marked_count()
}

/// The states of the rollout's moves, in order.
fn states(r: &Value) -> Vec<String> {
    (r["history"].as_array().into_iter().flatten())
        .map(|m| m["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The reason of the rollout's last move.
fn last_reason(r: &Value) -> String {
    (r["history"].as_array())
        .and_then(|h| h.last())
        .and_then(|m| m["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The number after `before` in `text`.
fn number_after(text: &str, before: &str) -> u64 {
    let rest = text.split(before).nth(1).unwrap_or_default();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// [`PER_GATEWAY`] untagged requests through the gateway at `addr`, one after the other: every
/// one answered by stable (the canary's share is 0 in the stage).
async fn send_through(addr: SocketAddr, name: &str) {
    for i in 0..PER_GATEWAY {
        let resp = Req::get(&format!("/items/{name}-{i}")).send(addr).await;
        assert_eq!(resp.status, 200, "{name} request {i}");
        assert_eq!(
            resp.header("x-upstream"),
            Some("stable"),
            "{name} request {i}"
        );
    }
}

/// Waits until the gateway whose admin API is at `admin` serves the stage's mirror: its
/// active version has it set over the route (a version is recorded once it serves; the state
/// read from etcd can show `shadowing` a moment before).
async fn serving_the_stage(admin: SocketAddr) {
    let active = || async {
        let v = dyegate_suite::upgrade::get_once(admin, "/versions").await;
        let v = v.map(|(_, v)| v).unwrap_or_default();
        (v["versions"].as_array().into_iter().flatten())
            .find(|v| v["active"] == true)
            .cloned()
            .unwrap_or_default()
    };
    let mirrored = |v: &Value| v["overrides"]["shop"]["shadow"]["group"] == "canary";
    dyegate_suite::poll_until(Duration::from_secs(30), active, mirrored)
        .await
        .unwrap_or_else(|v| panic!("{admin}: the stage's mirror not served: {v:#}"));
}

/// The fleet's evaluation counts gw1's [`PER_GATEWAY`] copies and gw2's none, and shows each
/// gateway's part.
fn judged_on_gw1s_copies(r: &Value) -> bool {
    let parts: Vec<Value> = (r["fleet"]["windows"].as_array().into_iter().flatten())
        .map(|w| w["shadow"]["copies"].clone())
        .collect();
    r["last_evaluation"]["shadow"]["copies"] == PER_GATEWAY && parts == [PER_GATEWAY, 0]
}

/// Starts two gateways with the canary answering as `fault`, waits for the stage on both, and
/// sends [`PER_GATEWAY`] requests through `gw1` alone: the fleet judges their copies, and they
/// are too few for the stage to end or fail, whatever the canary answered.
async fn stage_with_one_gateways_copies(fault: Fault, duration_ms: u64) -> RolloutFleet {
    let fleet = RolloutFleet::start(2, &staged(duration_ms));
    fleet.canary.set_fault(fault);
    let staged = fleet
        .wait_all(
            Duration::from_secs(30),
            "the shadow stage everywhere",
            |r| r["state"] == "shadowing" && r["shadow"]["mirroring"] == true,
        )
        .await;
    for r in &staged {
        assert_eq!(r["table_canary_share"], 0.0, "{r:#}");
        assert_eq!(r["step"], 0, "{r:#}");
    }
    for (_, gw) in fleet.running() {
        serving_the_stage(gw.admin_addr()).await;
    }
    send_through(fleet.gw(0).addr(), "gw1").await;
    let judged = fleet
        .wait_all(
            Duration::from_secs(30),
            "gw1's copies judged by the fleet",
            judged_on_gw1s_copies,
        )
        .await;
    for r in &judged {
        assert_eq!(r["state"], "shadowing", "one gateway's copies: {r:#}");
        assert_eq!(r["last_evaluation"]["enough_traffic"], false, "{r:#}");
    }
    let out = fleet
        .gw(1)
        .config()
        .cli(&["rollout", "status", "shop", "-o", "table"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains(
            "the canary's answers to each gateway's copies (the stage is judged on their sum):"
        ),
        "{out}"
    );
    fleet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_failing_on_the_copies_through_both_gateways_fails_in_shadowing_everywhere() {
    let fleet = stage_with_one_gateways_copies(Fault::Status500, 600_000).await;
    send_through(fleet.gw(1).addr(), "gw2").await;
    let failed = fleet
        .wait_all(Duration::from_secs(30), "the failure everywhere", |r| {
            r["state"] == "failed" && r["table_canary_share"] == 0.0
        })
        .await;
    for r in &failed {
        assert_eq!(states(r), ["pending", "shadowing", "failed"], "{r:#}");
        assert_eq!(r["step"], 0, "{r:#}");
        assert_eq!(r["shadow"]["mirroring"], false, "{r:#}");
        let reason = last_reason(r);
        assert!(
            reason.starts_with(
                "shadow gate error_rate breached: 1.0000 > 0.05 (canary's answers to "
            ),
            "{r:#}"
        );
        assert!(
            reason.ends_with("before any untagged request reached the canary"),
            "{reason}"
        );
        // Judged on the sum: more copies than one gateway sent.
        let copies = number_after(&reason, "canary's answers to ");
        assert!(
            copies > PER_GATEWAY && copies <= 2 * PER_GATEWAY,
            "{reason}"
        );
    }
    // Every gateway mirrored to the canary, and no untagged request ever reached it.
    assert_eq!(
        unmarked(&fleet.canary),
        0,
        "untagged requests at the canary"
    );
    assert!(fleet.canary.marked_count() > PER_GATEWAY as usize);
    // The failure's version on each gateway takes the stage's mirror away.
    for (i, gw) in fleet.running() {
        let versions = gw.admin_get("/versions").await;
        let list = versions["versions"].as_array().cloned().unwrap_or_default();
        let active = list.iter().find(|v| v["active"] == true);
        let active = active.unwrap_or_else(|| panic!("gw{}: {versions:#}", i + 1));
        assert_eq!(active["trigger"], "rollout", "gw{}: {active:#}", i + 1);
        assert!(
            active["overrides"]["shop"]["shadow"].is_null(),
            "gw{}: {active:#}",
            i + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healthy_canary_leaves_shadowing_for_step_1_on_every_gateway() {
    // Healthy: the canary's answers are stable's, byte for byte.
    let fleet = stage_with_one_gateways_copies(Fault::AnswerAs("stable"), 2_000).await;
    send_through(fleet.gw(1).addr(), "gw2").await;
    let step1 = fleet
        .wait_all(Duration::from_secs(30), "step 1 everywhere", |r| {
            r["state"] == "progressing" && r["step"] == 1 && r["table_canary_share"] == 10.0
        })
        .await;
    for r in &step1 {
        assert_eq!(states(r), ["pending", "shadowing", "progressing"], "{r:#}");
        assert_eq!(r["shadow"]["mirroring"], false, "{r:#}");
        let reason = last_reason(r);
        assert!(
            reason.starts_with("shadow stage held for 2000 ms: "),
            "{r:#}"
        );
        let copies = number_after(&reason, "held for 2000 ms: ");
        assert!(
            copies > PER_GATEWAY && copies <= 2 * PER_GATEWAY,
            "{reason}"
        );
        assert!(
            reason.ends_with(&format!(
                " copies, 0 errors, 0 mismatches of {copies} compared"
            )),
            "{reason}"
        );
    }
    // No request was sent after the stage: everything the canary got was a copy.
    assert_eq!(
        unmarked(&fleet.canary),
        0,
        "untagged requests at the canary"
    );
    // Each gateway served the stage's mirror as a version, then step 1's weights without it.
    for (i, gw) in fleet.running() {
        let versions = gw.admin_get("/versions").await;
        let list = versions["versions"].as_array().cloned().unwrap_or_default();
        let staged = list
            .iter()
            .any(|v| v["overrides"]["shop"]["shadow"]["group"] == "canary");
        assert!(
            staged,
            "gw{}: no version with the stage's mirror: {versions:#}",
            i + 1
        );
        let active = list.iter().find(|v| v["active"] == true);
        let active = active.unwrap_or_else(|| panic!("gw{}: {versions:#}", i + 1));
        assert_eq!(
            active["overrides"]["shop"],
            serde_json::json!([9000, 1000]),
            "gw{}: {versions:#}",
            i + 1
        );
    }
}

/// Polls `/rollouts/shop` on both upgradable gateways until `cond` holds on each.
async fn wait_both(
    gws: &[dyegate_suite::upgrade::Upgradable; 2],
    what: &str,
    cond: fn(&Value) -> bool,
) -> Vec<Value> {
    let both = || async {
        let mut out = Vec::new();
        for gw in gws {
            let r = dyegate_suite::upgrade::get_once(gw.admin_addr(), "/rollouts/shop").await;
            out.push(r.map(|(_, r)| r).unwrap_or_default());
        }
        out
    };
    dyegate_suite::poll_until(Duration::from_secs(30), both, |rs| rs.iter().all(cond))
        .await
        .unwrap_or_else(|rs| panic!("no {what}: {rs:#?}\n{}", gws[0].logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_upgraded_in_the_stage_hands_its_copies_to_the_new_process_which_publishes_them()
{
    use dyegate_suite::etcd::rollout::{push, source_yaml};
    use dyegate_suite::upgrade::Upgradable;
    use dyegate_suite::{EtcdServer, GatewayConfig};
    let etcd = EtcdServer::start();
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::Status500);
    let table = dyegate_suite::rollout::routes(&stable, &canary, &staged(600_000), "");
    let config = |id: &str| GatewayConfig::new(&table).with_source(&source_yaml(&etcd, id));
    let first = config("gw1");
    push(&first, &table);
    let gws = [
        Upgradable::start(first).await,
        Upgradable::start(config("gw2")).await,
    ];
    wait_both(&gws, "shadow stage", |r| {
        r["state"] == "shadowing" && r["shadow"]["mirroring"] == true
    })
    .await;
    for gw in &gws {
        serving_the_stage(gw.admin_addr()).await;
    }
    send_through(gws[0].addr(), "gw1").await;
    wait_both(&gws, "judgement of gw1's copies", judged_on_gw1s_copies).await;
    let old = gws[0].serving_pid();
    gws[0].upgrade_ok().await;
    assert_ne!(gws[0].serving_pid(), old, "{}", gws[0].logs());
    // The old process gave its lease up (its window went with it) and has exited: gw1's part
    // is the new process's, its copies handed over.
    let after = wait_both(&gws, "gw1's copies published again", judged_on_gw1s_copies).await;
    for r in &after {
        assert_eq!(r["state"], "shadowing", "{r:#}");
    }
    // With gw2's copies the fleet has enough: the breach holds over both gateways' copies.
    serving_the_stage(gws[0].admin_addr()).await;
    send_through(gws[1].addr(), "gw2").await;
    let failed = wait_both(&gws, "failure", |r| r["state"] == "failed").await;
    for r in &failed {
        let reason = last_reason(r);
        let copies = number_after(&reason, "canary's answers to ");
        assert!(
            copies > PER_GATEWAY && copies <= 2 * PER_GATEWAY,
            "{reason}"
        );
    }
    assert_eq!(unmarked(&canary), 0, "untagged requests at the canary");
}
