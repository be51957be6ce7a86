//! The revert figure of the upgrade-state issue: `REVERTS` upgrades (50) to a new binary that is
//! SIGKILLed 2 s after it started serving, under continuous load, each reverted by the old
//! binary; per revert, the refused connections and the requests that failed (those in flight on
//! the dead process). A bench target run by `cargo test` (never by `./tests/run.sh`): minutes.
//! How to run it and the last results: benches/upgrade/README.md ("Reverts").
//!
//! ```text
//! cargo test --bench upgrade_reverts -- --nocapture --test-threads=1
//! REVERTS=5 cargo test --bench upgrade_reverts -- --nocapture
//! ```

use dyegate_suite::upgrade::failing::crashing_after;
use dyegate_suite::upgrade::under_load::*;
use dyegate_suite::upgrade::Upgradable;
use dyegate_suite::Upstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reverts_under_load() {
    let reverts: usize = std::env::var("REVERTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let up = Upstream::start("stable");
    let config = config(&up);
    edit_gateway(&config, WATCH_LINE, "upgrade: { watch_ms: 20000 }");
    let gw = Upgradable::start(config).await;
    let load = start_load(&gw).await;
    let binary = crashing_after(gw.config(), 2);
    let (mut refused, mut failed, mut worst, mut reverted) = (0, 0, 0, 0);
    let mut took = Vec::new();
    for n in 1..=reverts {
        let before = load.report();
        let run = gw.upgrade(&["--binary", &binary, "--wait-old"]).await;
        assert!(
            load.wait_for_more_ok(20, SERVES_WITHIN).await,
            "revert {n}: {}",
            load.report()
        );
        let after = load.report();
        let r = after.connect_errors - before.connect_errors;
        let f = after.request_errors + after.bad_status - before.request_errors - before.bad_status;
        if run.reverted_to.is_some() {
            reverted += 1;
        }
        refused += r;
        failed += f;
        worst = worst.max(f);
        took.push(run.took.as_secs_f64());
        println!(
            "revert {n}: refused {r}, failed {f}: {}",
            run.verdict.unwrap_or_default()
        );
    }
    let report = load.stop().await;
    took.sort_by(f64::total_cmp);
    println!(
        "{reverted} of {reverts} upgrades reverted under load; refused connections {refused}; failed requests {failed} \
         (at most {worst} in one revert; 6 clients); command took {:.1} s median; load: {report}",
        took[took.len() / 2]
    );
    assert_eq!(reverted, reverts);
    assert_eq!(refused, 0);
}
