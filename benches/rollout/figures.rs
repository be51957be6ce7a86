//! The rollout's figures, measured on the real gateway: a bench target run by `cargo test`
//! (never by `./tests/run.sh`).
//!
//! ```text
//! cargo test --release --bench rollout_figures -- --nocapture
//! ```

use std::time::Duration;

use dyegate_suite::rollout::{break_canary, SLACK};
use dyegate_suite::upstream::Fault;

/// Breach to canary share 0 over 10 runs, and the untagged requests the bad canary served in
/// between (~1 min).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn figures_breach_to_share_0_over_10_runs() {
    let fields = "steps: [50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 20, max_error_rate: 0.05 }";
    let mut took = Vec::new();
    let mut in_traffic = Vec::new();
    let mut served = Vec::new();
    for _ in 0..10 {
        let (t, _, samples, _, _gw, breach) = break_canary(fields, Fault::FailTenths(3), 4).await;
        // In traffic: the last untagged answer from the canary after the breach.
        let last = (samples.iter())
            .filter(|s| s.at >= breach && s.upstream == "canary")
            .map(|s| s.at)
            .max()
            .unwrap_or(breach);
        took.push(t);
        in_traffic.push(last - breach);
        served.push(
            samples
                .iter()
                .filter(|s| s.at >= breach && s.at <= last && s.upstream == "canary")
                .count(),
        );
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() - 1])
    };
    served.sort_unstable();
    let (m, x) = median(&mut took);
    let (tm, tx) = median(&mut in_traffic);
    println!("breach -> state failed (status poll): median {m:?}, max {x:?}");
    println!("breach -> last canary answer (traffic): median {tm:?}, max {tx:?}");
    println!(
        "canary answers between breach and abort: median {}, max {} (runs: {served:?})",
        served[5], served[9]
    );
    assert!(x <= Duration::from_millis(2000) + SLACK);
}
