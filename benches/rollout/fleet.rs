//! The fleet rollout's figures, measured on three real gateways and a real etcd: a bench target
//! run by `cargo test` (never by `./tests/run.sh`), one at a time. Results and the commands:
//! benches/rollout/README.md.
//!
//! ```text
//! cargo test --bench fleet_rollout_figures -- --nocapture --test-threads=1
//! ```

use std::time::{Duration, Instant};

use dyegate_suite::etcd::rollout::{source_yaml, RolloutFleet, LEASE_TTL};
use dyegate_suite::traffic::Traffic;
use dyegate_suite::upstream::Fault;
use dyegate_suite::{poll_until, GatewayConfig};
use serde_json::Value;

fn median_max(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

/// A canary that starts answering 500 on a step, to every gateway at canary share 0 (each seen
/// by polling the three gateways' `/rollouts/shop`), over 10 runs on one fleet (resumed
/// between runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn figures_breach_to_every_gateway_at_0_over_10_runs() {
    let fleet = RolloutFleet::start(
        3,
        "steps: [50, 100], step_ms: 600000, gates: { window_ms: 2000, min_requests: 20, max_error_rate: 0.05 }",
    );
    let traffic: Vec<Traffic> = (fleet.running())
        .map(|(_, gw)| Traffic::start(gw.addr(), 2, Duration::from_millis(5), vec![]))
        .collect();
    let mut took = Vec::new();
    for run in 0..10 {
        fleet.canary.set_fault(Fault::None);
        if run > 0 {
            // time is tested: windows count whole seconds, and the abort's second holds the
            // last run's errors: the step starts again in a second of its own.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let (code, body) = fleet.gw(0).admin_post("/rollouts/shop/resume", None).await;
            assert_eq!(code, http::StatusCode::OK, "{body:#}");
        }
        // On step 1, judged on three windows that each have canary traffic.
        fleet
            .wait_all(Duration::from_secs(60), "step 1 judged on the fleet", |r| {
                let parts = r["fleet"]["windows"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                r["state"] == "progressing"
                    && r["table_canary_share"] == 50.0
                    && parts.len() == 3
                    && parts
                        .iter()
                        .all(|p| p["canary_requests"].as_u64() >= Some(5))
            })
            .await;
        fleet.canary.set_fault(Fault::Status500);
        let broken = Instant::now();
        let mut at_zero: Vec<Option<Duration>> = vec![None; 3];
        while at_zero.iter().any(Option::is_none) {
            for (i, gw) in fleet.running() {
                if at_zero[i].is_none() {
                    let r = gw.admin_get("/rollouts/shop").await;
                    if r["table_canary_share"] == 0.0 {
                        at_zero[i] = Some(broken.elapsed());
                    }
                }
            }
            assert!(
                broken.elapsed() < Duration::from_secs(60),
                "no abort: {at_zero:?}"
            );
            // time is tested: the pace of the poll the figure is read from.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let last = at_zero.iter().flatten().max().copied().unwrap_or_default();
        println!("run {run}: first failing answer -> every gateway at 0: {last:?} ({at_zero:?})");
        took.push(last);
    }
    for t in traffic {
        drop(t.stop().await);
    }
    let (median, max) = median_max(&mut took);
    println!(
        "breach -> all 3 gateways at canary share 0, over 10 runs: median {median:?}, max {max:?}"
    );
}

/// The driver killed (SIGKILL) on a step, to another gateway driving, over 5 kills (the killed
/// gateway started again between kills).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn figures_driver_failover_over_5_kills() {
    let mut fleet = RolloutFleet::start(
        3,
        "steps: [10, 50, 100], step_ms: 600000, gates: { window_ms: 2000, min_requests: 20, max_error_rate: 0.05 }",
    );
    fleet
        .wait_all(Duration::from_secs(60), "step 1", |r| {
            r["step"] == 1 && r["fleet"]["driver"].is_string()
        })
        .await;
    let mut took = Vec::new();
    for kill in 0..5 {
        let (i, _) = fleet.running().next().expect("a gateway");
        let driver = fleet.driver(i).await;
        let d = RolloutFleet::index_of(&driver);
        let config = fleet.kill_keeping(d);
        let killed = Instant::now();
        let mut new = None;
        while new.is_none() {
            for (_, gw) in fleet.running() {
                let r = gw.admin_get("/rollouts/shop").await;
                if r["fleet"]["driving"] == true {
                    new = r["fleet"]["gateway_id"].as_str().map(str::to_string);
                }
            }
            assert!(killed.elapsed() < Duration::from_secs(60), "no new driver");
            // time is tested: the pace of the poll the figure is read from.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let t = killed.elapsed();
        if t < Duration::from_millis(500) {
            // Not the driver after all: someone's view was stale. Show everything.
            for (j, gw) in fleet.running() {
                println!(
                    "gw{}: {}\n{}",
                    j + 1,
                    gw.admin_get("/rollouts/shop").await["fleet"],
                    gw.logs()
                );
            }
        }
        println!(
            "kill {kill}: {driver} killed -> {} drives: {t:?} (lease TTL {LEASE_TTL:?})",
            new.unwrap_or_default()
        );
        took.push(t);
        fleet.restart(d, config);
        let back = poll_until(
            Duration::from_secs(30),
            || fleet.gw(d).admin_get("/rollouts/shop"),
            |r| r["fleet"]["driver"].is_string() && r["step"] == 1,
        )
        .await;
        assert!(back.is_ok(), "{back:?}");
    }
    let (median, max) = median_max(&mut took);
    println!("driver SIGKILL -> another gateway drives, over 5 kills: median {median:?}, max {max:?} (lease TTL {LEASE_TTL:?}, rounds every 1 s)");
}

/// `routes` rolled-out routes (`shop0`..), each with its own stable and canary groups on the
/// two upstreams.
fn many_rollouts(fleet: &RolloutFleet, routes: usize) -> String {
    let mut t = format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"] }}\nroutes:\n",
        fleet.stable.target(),
        fleet.canary.target()
    );
    for r in 0..routes {
        t.push_str(&format!(
            "  - name: shop{r}\n    match: {{ path_prefix: /shop{r} }}\n    split:\n      - {{ upstream: stable, weight: 100 }}\n      - {{ upstream: canary, weight: 0 }}\n    rollout: {{ canary: canary, steps: [10, 50, 100], step_ms: 600000, gates: {{ window_ms: 30000, min_requests: 1000000, max_error_rate: 0.05 }} }}\n"
        ));
    }
    t
}

/// How many of a gateway's rollouts `cond` holds for.
async fn count(gw: &dyegate_suite::Dyegate, cond: impl Fn(&Value) -> bool) -> usize {
    let all = gw.admin_get("/rollouts").await;
    (all["rollouts"].as_array().into_iter().flatten())
        .filter(|r| cond(r))
        .count()
}

/// utime + stime of `pid`, in clock ticks (USER_HZ, 100 a second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, r)| r.split(' ').collect());
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn endpoint_status(fleet: &RolloutFleet) -> (u64, u64) {
    let out = fleet.etcd.ctl_ok(&["endpoint", "status", "-w", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_default();
    let s = &v[0]["Status"];
    (
        s["header"]["revision"].as_u64().unwrap_or(0),
        s["dbSize"].as_u64().unwrap_or(0),
    )
}

/// etcd writes per second per gateway while 20 rollouts are judged on three gateways, the size
/// of a window, etcd's database growth, and what publishing costs a gateway's CPU (the same
/// gateway with every rollout paused: no windows published).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn figures_etcd_writes_and_cpu_of_publishing_windows() {
    const ROUTES: usize = 20;
    const SPAN: Duration = Duration::from_secs(30);
    let mut fleet = RolloutFleet::start(
        1,
        "steps: [10, 50, 100], step_ms: 600000, gates: { max_error_rate: 0.05 }",
    );
    let table = many_rollouts(&fleet, ROUTES);
    dyegate_suite::etcd::rollout::push(fleet.gw(0).config(), &table);
    for id in ["gw2", "gw3"] {
        let config = GatewayConfig::new(&table).with_source(&source_yaml(&fleet.etcd, id));
        fleet.gateways.push(Some(config.start()));
    }
    let judged = |r: &Value| {
        r["state"] == "waiting_for_traffic"
            && r["fleet"]["windows"].as_array().map(Vec::len) == Some(3)
    };
    let ready = poll_until(
        Duration::from_secs(60),
        || count(fleet.gw(1), judged),
        |n| *n == ROUTES,
    )
    .await;
    assert!(ready.is_ok(), "{ready:?}");
    // A gateway that does not drive: its cost is its own windows and the reads.
    let driver = fleet.gw(0).admin_get("/rollouts/shop0").await["fleet"]["driver"].clone();
    let driver = driver.as_str().unwrap_or_default().to_string();
    let probe = (0..3)
        .find(|i| format!("gw{}", i + 1) != driver)
        .unwrap_or(1);
    let pid = fleet.gw(probe).pid();
    let (rev0, db0) = endpoint_status(&fleet);
    let cpu0 = cpu_ticks(pid);
    // time is tested: a span of judged rollouts, to count the writes and the CPU it costs.
    tokio::time::sleep(SPAN).await;
    let judging_cpu = cpu_ticks(pid) - cpu0;
    let (rev1, db1) = endpoint_status(&fleet);
    let key = format!(
        "{}rollouts/shop0/figures/gw1",
        dyegate_suite::etcd::fleet::PREFIX
    );
    let window_bytes = fleet.etcd.get(&key).map_or(0, |v| v.len());
    for r in 0..ROUTES {
        let (code, body) = fleet
            .gw(0)
            .admin_post(&format!("/rollouts/shop{r}/pause"), None)
            .await;
        assert_eq!(code, http::StatusCode::OK, "{body:#}");
    }
    let paused = |r: &Value| r["state"] == "paused";
    let settled = poll_until(
        Duration::from_secs(30),
        || count(fleet.gw(probe), paused),
        |n| *n == ROUTES,
    )
    .await;
    assert!(settled.is_ok());
    let (rev2, _) = endpoint_status(&fleet);
    let cpu1 = cpu_ticks(pid);
    // time is tested: the same span with every rollout paused (no window published).
    tokio::time::sleep(SPAN).await;
    let paused_cpu = cpu_ticks(pid) - cpu1;
    let (rev3, _) = endpoint_status(&fleet);
    let s = SPAN.as_secs_f64();
    let writes = (rev1 - rev0) as f64 / s;
    println!(
        "{ROUTES} rollouts judged on 3 gateways: {writes:.1} etcd writes/s in all, {:.2} per gateway per rollout; paused: {:.2} writes/s in all",
        writes / 3.0 / ROUTES as f64,
        (rev3 - rev2) as f64 / s
    );
    println!(
        "a window is {window_bytes} bytes; etcd's db grew {} KiB in {SPAN:?} (before compaction): {:.0} MiB per hour per gateway and rollout at this pace",
        (db1.saturating_sub(db0)) / 1024,
        db1.saturating_sub(db0) as f64 / s * 3600.0 / 3.0 / ROUTES as f64 / 1024.0 / 1024.0
    );
    let ms = |ticks: u64| ticks as f64 * 10.0;
    println!(
        "CPU of a gateway that does not drive, over {SPAN:?}: {:.0} ms judging {ROUTES} rollouts (publishing), {:.0} ms with them paused: {:.3} ms a second per rolled-out route ({:.4}% of a core)",
        ms(judging_cpu),
        ms(paused_cpu),
        (ms(judging_cpu) - ms(paused_cpu)) / s / ROUTES as f64,
        (ms(judging_cpu) - ms(paused_cpu)) / s / ROUTES as f64 / 10.0
    );
}
