//! A storm of revisions does not delay the next push, end to end with a real etcd: with a
//! 2,000-route table, a thousand puts to one key behind dyegate's back (each a revision that
//! changes the table), then a `dyegate push`: the push is served within seconds, because a
//! gateway applies the newest table it can see, never a queue of stale ones. The figures
//! (storm size, delay before and after the fix) are in benches/etcd/README.md.

use std::time::Duration;

use dyegate_suite::etcd::fleet::{storm, Fleet, PREFIX};
use dyegate_suite::gateway::many_routes_yaml;

/// Puts to one key, as fast as one client writes them.
const STORM: usize = 1_000;
/// Generous for a debug build on a loaded machine: applying the storm one revision at a time
/// takes minutes, coalesced a few seconds.
const BOUND: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_after_a_storm_of_revisions_is_served_within_seconds() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let table = many_routes_yaml(2_000, 5);
    let first = fleet
        .push_text(&config, &table)
        .unwrap_or_else(|o| panic!("{o}"));
    let gw = config.start();
    assert_eq!(gw.version().await, first);

    let key = format!("{PREFIX}tables/{}/routes/000001-r0", fleet.generation());
    let value = fleet.etcd.get(&key).expect("route r0");
    let other = value.replacen("weight: 95", "weight: 90", 1);
    assert_ne!(value, other, "{value}");
    let stormed = storm(&fleet.etcd.endpoint(), &key, [&other, &value], STORM).await;
    let corrective = table.replacen("weight: 95", "weight: 80", 1);
    let pushed = fleet
        .push_text(gw.config(), &corrective)
        .unwrap_or_else(|o| panic!("{o}"));
    assert!(pushed > stormed);
    let status = gw
        .wait_for_status(BOUND, "the push after the storm", |s| {
            s["version"] == pushed
        })
        .await;
    assert_eq!(status["routes"], 2_000, "{status:#}");
    let applied = gw.metrics().await.value(
        "dyegate_reloads_total",
        &[("trigger", "etcd"), ("result", "applied")],
    );
    assert!(
        applied < (STORM / 10) as f64,
        "{applied} tables applied: the storm was applied revision by revision"
    );
}
