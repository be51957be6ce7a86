//! The figures of the fleet issue, measured on real gateways and a real etcd: a bench target run
//! by `cargo test` (never by `./tests/run.sh`), in release mode, one at a time. Results:
//! benches/etcd/README.md.
//!
//! ```text
//! cargo test --release --bench etcd_figures -- --nocapture --test-threads=1
//! ```

use std::time::{Duration, Instant};

use dyegate_suite::etcd::fleet::{storm, Fleet, SETTLE};
use dyegate_suite::load::{Load, Shape};
use dyegate_suite::{Dyegate, GatewayConfig};

/// Median and p99 (nearest rank) of `values` in ms (sorted in place).
fn median_p99(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    (rank(0.5), rank(0.99), values[n - 1])
}

/// Waits until every gateway reports `version`; how long that took from `since`.
async fn all_serving(gws: &[Dyegate], version: u64, since: Instant) -> Duration {
    for gw in gws {
        gw.wait_for_status(SETTLE, "the pushed revision", |s| s["version"] == version)
            .await;
    }
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn figures_push_to_five_gateways_serving() {
    const PUSHES: usize = 50;
    let fleet = Fleet::new();
    let pusher = fleet.config("blue");
    fleet.push(&pusher, "blue");
    let gws: Vec<Dyegate> = (0..5).map(|_| fleet.config("blue").start()).collect();
    let shape = Shape {
        keep_alive: 1,
        fresh: 1,
        path: "/".into(),
    };
    let loads: Vec<Load> = gws
        .iter()
        .map(|g| Load::start(g.addr(), shape.clone()))
        .collect();
    let mut took = Vec::new();
    for i in 0..PUSHES {
        let group = if i % 2 == 0 { "green" } else { "blue" };
        let revision = fleet.push(&pusher, group);
        let since = Instant::now();
        took.push(all_serving(&gws, revision, since).await.as_secs_f64() * 1000.0);
    }
    let (mut sent, mut failed) = (0, 0);
    for (i, load) in loads.into_iter().enumerate() {
        let report = load.stop().await;
        println!("gateway {i}: {report}");
        sent += report.sent;
        failed += report.failed();
    }
    let (median, p99, max) = median_p99(&mut took);
    println!(
        "push returned -> all 5 serving, over {PUSHES} pushes: median {median:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
    );
    println!("steady traffic to all 5 during the pushes: {sent} requests, {failed} failed");
    assert_eq!(failed, 0);
    assert!(p99 < 1000.0, "p99 {p99} ms");
}

/// utime + stime of `pid` in clock ticks, and VmRSS in KiB.
fn cpu_and_rss(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, r)| r.split(' ').collect());
    let ticks = fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_idle_watch_cost() {
    const IDLE: Duration = Duration::from_secs(60);
    let fleet = Fleet::new();
    let etcd_gw = fleet.config("blue");
    fleet.push(&etcd_gw, "blue");
    let etcd_gw = etcd_gw.start();
    let file_gw = GatewayConfig::new(&fleet.routes_to("blue")).start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = [cpu_and_rss(etcd_gw.pid()), cpu_and_rss(file_gw.pid())];
    tokio::time::sleep(IDLE).await;
    let after = [cpu_and_rss(etcd_gw.pid()), cpu_and_rss(file_gw.pid())];
    let hz = 100.0; // USER_HZ on Linux
    for (name, b, a) in [
        ("etcd source", before[0], after[0]),
        ("routes file", before[1], after[1]),
    ] {
        let cpu_ms = (a.0 - b.0) as f64 * 1000.0 / hz;
        println!(
            "{name}: idle {IDLE:?}: CPU {cpu_ms:.0} ms ({:.3}% of a core), RSS {} KiB -> {} KiB",
            cpu_ms / IDLE.as_secs_f64() / 10.0,
            b.1,
            a.1
        );
    }
}

/// A storm of revisions then a corrective push, on a 2,000-route table: how long the storm's
/// puts took, and from the push returning to the gateway serving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_push_after_a_revision_storm() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let table = dyegate_suite::gateway::many_routes_yaml(2_000, 5);
    fleet
        .push_text(&config, &table)
        .unwrap_or_else(|o| panic!("{o}"));
    let gw = config.start();
    for (i, n) in [1_000usize, 2_000].into_iter().enumerate() {
        let key = format!(
            "{}tables/{}/routes/000001-r0",
            dyegate_suite::etcd::fleet::PREFIX,
            fleet.generation()
        );
        let value = fleet.etcd.get(&key).expect("route r0");
        let other = format!("{value}\n# a storm of edits");
        let began = Instant::now();
        storm(&fleet.etcd.endpoint(), &key, [&other, &value], n).await;
        let stormed = began.elapsed();
        let corrective = table.replacen("weight: 95", &format!("weight: {}", 80 + i), 1);
        let pushed = fleet
            .push_text(gw.config(), &corrective)
            .unwrap_or_else(|o| panic!("{o}"));
        let since = Instant::now();
        gw.wait_for_status(Duration::from_secs(300), "the push", |s| {
            s["version"] == pushed
        })
        .await;
        let applied = gw.metrics().await.value(
            "dyegate_reloads_total",
            &[("trigger", "etcd"), ("result", "applied")],
        );
        println!(
            "storm of {n} puts in {:.1} s, then a push: served {:.2} s after the push returned ({applied} tables applied so far)",
            stormed.as_secs_f64(),
            since.elapsed().as_secs_f64()
        );
    }
}
