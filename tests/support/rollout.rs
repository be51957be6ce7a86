//! Shared by the rollout suites (tests/rollout/) and benches/rollout/figures.rs: the routes file
//! of a `shop` route with a stable and a canary group, the rollout's status as the admin API gives
//! it, and a canary broken mid-rollout.

use std::time::{Duration, Instant};

use crate::traffic::{Sample, Traffic};
use crate::upstream::{Fault, FaultyUpstream};
use crate::wait::poll_until;
use crate::Dyegate;
use serde_json::Value;

/// Room for a loaded two-core machine on top of a configured time.
pub const SLACK: Duration = Duration::from_millis(2000);

/// routes.yaml: `shop` splits stable 100 / canary 0, the `canary` tag reaches the canary, and
/// `rollout` (one line of flow mapping fields) drives it. `sticky` adds a sticky key (or any
/// other whole lines of route fields).
pub fn routes(
    stable: &FaultyUpstream,
    canary: &FaultyUpstream,
    rollout: &str,
    sticky: &str,
) -> String {
    format!(
        "upstreams:
  stable: {{ targets: [\"{}\"] }}
  canary: {{ targets: [\"{}\"] }}
routes:
  - name: shop
    dye: {{ tags: {{ canary: canary }} }}
{sticky}    split:
      - {{ upstream: stable, weight: 100 }}
      - {{ upstream: canary, weight: 0 }}
    rollout: {{ canary: canary, {rollout} }}
",
        stable.target(),
        canary.target()
    )
}

pub const QUICK: &str = "steps: [10, 50, 100], step_ms: 1000, gates: { window_ms: 1000, min_requests: 20, max_error_rate: 0.05 }";

pub fn upstreams() -> (FaultyUpstream, FaultyUpstream) {
    (
        FaultyUpstream::start("stable", Fault::None),
        FaultyUpstream::start("canary", Fault::None),
    )
}

pub async fn rollout(gw: &Dyegate) -> Value {
    gw.admin_get("/rollouts/shop").await
}

/// Polls `/rollouts/shop` until `cond` holds; panics after `timeout` with the last answer.
pub async fn wait_rollout(
    gw: &Dyegate,
    timeout: Duration,
    what: &str,
    cond: impl FnMut(&Value) -> bool,
) -> Value {
    match poll_until(timeout, || rollout(gw), cond).await {
        Ok(r) => r,
        Err(r) => panic!("no {what} within {timeout:?}; last: {r:#}\n{}", gw.logs()),
    }
}

/// Waits until the gates of `route`'s rollout have been judged `n` more times (each judgement
/// stamps `last_evaluation.at`) and returns the status then. What a judgement decides is carried
/// out before the next one, so a state asserted after `judged(.., n)` held through `n - 1` whole
/// judgements: the way to say "the gates did not move it" without waiting for a fixed time.
pub async fn judged(gw: &Dyegate, route: &str, n: usize) -> Value {
    let path = format!("/rollouts/{route}");
    let mut seen = vec![gw.admin_get(&path).await["last_evaluation"]["at"].clone()];
    // Judgements come every second; a loaded machine may be late.
    let timeout = Duration::from_secs(5 * n as u64 + 5);
    let judged = poll_until(
        timeout,
        || gw.admin_get(&path),
        |r| {
            let at = &r["last_evaluation"]["at"];
            if !seen.contains(at) {
                seen.push(at.clone());
            }
            seen.len() > n
        },
    )
    .await;
    judged.unwrap_or_else(|r| panic!("not judged {n} times in {timeout:?}: {r:#}\n{}", gw.logs()))
}

pub fn is(state: &'static str, step: u64) -> impl Fn(&Value) -> bool {
    move |r| r["state"] == state && r["step"] == step
}

pub fn untagged(samples: &[Sample], upstream: &str) -> usize {
    samples.iter().filter(|s| s.upstream == upstream).count()
}

/// Holds a canary at 50%, breaks it with `fault`, and returns how long the rollout took to
/// take it to 0, the rollout's status, and the untagged and tagged answers.
pub async fn break_canary(
    rollout_fields: &str,
    fault: Fault,
    clients: usize,
) -> (Duration, Value, Vec<Sample>, Vec<Sample>, Dyegate, Instant) {
    break_canary_with(rollout_fields, "", fault, clients).await
}

/// [`break_canary`] on a route with more fields (`route_lines`: whole lines, e.g.
/// `"    timeouts: { read_ms: 200 }\n"`).
pub async fn break_canary_with(
    rollout_fields: &str,
    route_lines: &str,
    fault: Fault,
    clients: usize,
) -> (Duration, Value, Vec<Sample>, Vec<Sample>, Dyegate, Instant) {
    let (stable, canary) = upstreams();
    let gw = Dyegate::start(&routes(&stable, &canary, rollout_fields, route_lines));
    let traffic = Traffic::start(gw.addr(), clients, Duration::from_millis(4), vec![]);
    let tag = vec![("x-env-tag".to_string(), "canary".to_string())];
    let tagged = Traffic::start(gw.addr(), 1, Duration::from_millis(20), tag);
    wait_rollout(
        &gw,
        Duration::from_secs(20),
        "step 1 with traffic",
        is("progressing", 1),
    )
    .await;
    // Two judgements on a healthy canary first.
    let r = judged(&gw, "shop", 2).await;
    assert_eq!(r["state"], "progressing", "{r:#}");
    let breach = Instant::now();
    canary.set_fault(fault);
    let r = wait_rollout(&gw, Duration::from_secs(15), "failure", |r| {
        r["state"] == "failed"
    })
    .await;
    let took = breach.elapsed();
    // Untagged traffic after the abort, and tagged traffic all along.
    // time is tested: a second of traffic after the abort, none of it untagged to the canary.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let samples = traffic.stop().await;
    let tagged = tagged.stop().await;
    // Keep the upstreams alive until the samples are in.
    drop((stable, canary));
    (took, r, samples, tagged, gw, breach)
}

/// Sends SIGHUP and waits until the gateway has counted the reload it asked for (applied, no-op
/// or failed).
pub async fn sighup_and_wait(gw: &Dyegate) {
    let reloads = |s: &Value| -> u64 {
        (["applied", "noop", "failed"].iter())
            .map(|k| s["reloads"][k].as_u64().unwrap_or(0))
            .sum()
    };
    let before = reloads(&gw.status().await);
    gw.signal(libc::SIGHUP);
    gw.wait_for_status(Duration::from_secs(10), "the SIGHUP's reload", |s| {
        reloads(s) > before
    })
    .await;
}

/// A gateway that can be upgraded, on [`routes`] with `rollout` fields, once its rollout is on
/// step 1; `/rollouts/shop` as it answers (one connection per call, so it works across the
/// upgrade); and its upstreams, to keep while it runs.
pub async fn upgradable_at_step_1(
    rollout: &str,
) -> (
    crate::upgrade::Upgradable,
    RolloutOf,
    (FaultyUpstream, FaultyUpstream),
) {
    let (stable, canary) = upstreams();
    let config = crate::GatewayConfig::new(&routes(&stable, &canary, rollout, ""));
    let gw = crate::upgrade::Upgradable::start(config).await;
    let get = RolloutOf(gw.admin_addr());
    if let Err(r) = poll_until(Duration::from_secs(20), || get.status(), |r| r["step"] == 1).await {
        panic!("no step 1: {r:#}");
    }
    (gw, get, (stable, canary))
}

/// `GET /rollouts/shop` on an admin address.
#[derive(Clone, Copy)]
pub struct RolloutOf(std::net::SocketAddr);

impl RolloutOf {
    pub async fn status(self) -> Value {
        crate::upgrade::get_once(self.0, "/rollouts/shop")
            .await
            .expect("admin answers")
            .1
    }
}

/// Adds a route that has nothing to do with the rollout to `text`, writes it as an editor would
/// and waits for its version; returns the new text.
pub async fn edit_unrelated(gw: &Dyegate, text: &str) -> String {
    let v = gw.version().await;
    let unrelated = format!("{text}  - name: api\n    match: {{ path_prefix: /api }}\n    split: [{{ upstream: stable, weight: 1 }}]\n");
    gw.config().write_and_rename("routes.yaml", &unrelated);
    gw.wait_for_status(Duration::from_secs(10), "the edit", |s| {
        s["version"].as_u64() > Some(v)
    })
    .await;
    unrelated
}
