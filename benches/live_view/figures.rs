//! The live view's cost, measured on the real gateway (issue 34): the admin API's latency with
//! the page refreshing every second and without, and the size of the in-memory series. A bench
//! target run by `cargo test` (never by `./tests/run.sh`):
//!
//! ```text
//! nice -n 19 cargo test --bench live_view_figures -- --nocapture
//! ```
//!
//! The page's refresh is what its code asks each second with two tabs open, one on Overview
//! (`/status`, `/traffic`) and one on Rollouts (`/rollouts`, `/rollouts/ROUTE/series` for each
//! of the 10 rollouts): the same requests the browser sends, without a browser competing for the
//! two cores. The probe is `GET /status` every 20 ms; proxied traffic runs throughout.

use std::time::{Duration, Instant};

use dyegate_suite::traffic::Traffic;
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{Dyegate, Req};
use serde_json::Value;

const ROLLOUTS: usize = 10;
const PROBE_EVERY: Duration = Duration::from_millis(20);
const PHASE: Duration = Duration::from_secs(30);

fn routes(stable: &FaultyUpstream, canary: &FaultyUpstream) -> String {
    let mut text = format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"] }}\nroutes:\n",
        stable.target(),
        canary.target()
    );
    for i in 0..ROLLOUTS {
        // The first route takes the traffic (no matcher); the others match a prefix nobody
        // sends, their series are sampled all the same.
        let m = if i == 0 {
            String::new()
        } else {
            format!("    match: {{ path_prefix: /r{i} }}\n")
        };
        text += &format!(
            "  - name: r{i}\n{m}    split:\n      - {{ upstream: stable, weight: 100 }}\n      - {{ upstream: canary, weight: 0 }}\n    rollout: {{ canary: canary, steps: [10, 50, 100], step_ms: 600000, gates: {{ window_ms: 5000, min_requests: 5, max_error_rate: 0.5, max_latency_ms: 2000 }} }}\n"
        );
    }
    text
}

/// Probes `GET /status` every 20 ms for `PHASE`; its latencies, sorted.
async fn probe(gw: &Dyegate) -> Vec<Duration> {
    let mut took = Vec::new();
    let end = Instant::now() + PHASE;
    let mut tick = tokio::time::interval(PROBE_EVERY);
    while Instant::now() < end {
        tick.tick().await;
        let t = Instant::now();
        let resp = Req::get("/status").send(gw.admin_addr()).await;
        took.push(t.elapsed());
        assert_eq!(resp.status, 200);
    }
    took.sort();
    took
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_latency_with_and_without_the_page_and_series_size() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::None);
    let gw = Dyegate::start(&routes(&stable, &canary));
    let traffic = Traffic::start(gw.addr(), 2, Duration::from_millis(10), vec![]);
    // A full 15 minutes is not waited for: the size is the points' count times their size,
    // measured below on what a minute holds.
    let without = probe(&gw).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let page = {
        let (stop, admin) = (stop.clone(), gw.admin_addr());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut bytes = 0usize;
            let mut seen: Vec<Option<u64>> = vec![None; ROLLOUTS];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                for p in ["/status", "/traffic", "/rollouts"] {
                    bytes += Req::get(p).send(admin).await.text().len();
                }
                // As the page: only the points it has not seen yet.
                for (i, last) in seen.iter_mut().enumerate() {
                    let query = last.map_or(String::new(), |t| format!("?since={t}"));
                    let text = Req::get(&format!("/rollouts/r{i}/series{query}"))
                        .send(admin)
                        .await
                        .text();
                    bytes += text.len();
                    let j: Value = serde_json::from_str(&text).unwrap_or_default();
                    if let Some(t) = j["points"]
                        .as_array()
                        .and_then(|p| p.last())
                        .and_then(|p| p["t"].as_u64())
                    {
                        *last = Some(t);
                    }
                }
            }
            bytes
        })
    };
    let with = probe(&gw).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let page_bytes = page.await.expect("page task");
    let served = traffic.stop().await.len();

    let series: Value = gw.admin_get("/rollouts/r0/series").await;
    let points = series["points"].as_array().map_or(0, Vec::len);
    println!(
        "load: {served} proxied requests in {:?} (2 clients, one request every 10 ms each), GET /status every 20 ms",
        PHASE * 2
    );
    for (name, v) in [
        ("without the page", &without),
        ("page refreshing every second", &with),
    ] {
        println!(
            "{name}: {} probes, p50 {:?}, p99 {:?}, max {:?}",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.99),
            v[v.len() - 1]
        );
    }
    println!(
        "the page read {page_bytes} bytes of JSON in {PHASE:?} ({} rollouts)",
        ROLLOUTS
    );
    println!(
        "series: {points} points after {:?}; in memory {} bytes a point, {} points at most: {} bytes per rollout; {} bytes per (route, group) pair of traffic samples",
        PHASE * 2,
        dyegate::rollout::series::POINT_BYTES,
        dyegate::rollout::series::POINTS,
        dyegate::rollout::series::POINT_BYTES * dyegate::rollout::series::POINTS,
        dyegate::telemetry::traffic::PAIR_BYTES,
    );
}
