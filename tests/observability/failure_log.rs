//! Upstream failures in the log, bounded (issue 26): a dead upstream under a burst of requests
//! gets one full line per target per 5 s window and one summary line for the rest, and every
//! failure is accounted for (logged, or counted in a summary) and in the metrics.

use std::time::{Duration, Instant};

use dyegate_suite::{free_addr, poll_until, GatewayConfig, Req};
use http::StatusCode;

const BURST: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_cannot_flood_the_log() {
    let dead = free_addr();
    let gw = GatewayConfig::new(&format!(
        "upstreams:\n  dead: {{ targets: [\"{dead}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: dead, weight: 1 }}]\n"
    ))
    .start();
    let started = Instant::now();
    for _ in 0..BURST {
        assert_eq!(
            Req::get("/").send(gw.addr()).await.status,
            StatusCode::BAD_GATEWAY
        );
    }
    let took = started.elapsed();
    let full = format!("request to upstream {dead} failed, status 502");
    let summary = format!("upstream {dead}: ");
    // (full lines, failures summed up): every failure is one or the other, once the last
    // window has been flushed (a second after it ends).
    let counted = |logs: &str| -> (usize, usize) {
        let full_lines = logs.lines().filter(|l| l.contains(&full)).count();
        let summed = (logs.lines())
            .filter_map(|l| l.split_once(&summary))
            .filter_map(|(_, rest)| rest.split_once(" more failure(s)"))
            .filter_map(|(n, _)| n.parse::<usize>().ok())
            .sum();
        (full_lines, summed)
    };
    let logs = poll_until(
        Duration::from_secs(20),
        || async { gw.logs() },
        |logs| {
            let (full_lines, summed) = counted(logs);
            full_lines + summed == BURST
        },
    )
    .await
    .unwrap_or_else(|logs| {
        panic!(
            "not every failure accounted for: {:?}\n{logs}",
            counted(&logs)
        )
    });
    let (full_lines, summed) = counted(&logs);
    // One full line per 5 s window the burst spanned.
    let windows = took.as_secs() as usize / 5 + 1;
    assert!(
        (1..=windows).contains(&full_lines) && summed >= BURST - windows,
        "{full_lines} full lines and {summed} summed up over {took:?}\n{logs}"
    );
    // Pingora's own line per failed request is not there.
    assert!(!logs.contains("Fail to proxy"), "{logs}");
    let errors = gw.metrics().await.sum(
        "dyegate_upstream_errors_total",
        &[("upstream_group", "dead")],
    );
    assert_eq!(errors, BURST as f64);
}
