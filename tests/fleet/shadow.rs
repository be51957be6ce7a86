//! A rollout's shadow stage is not run in a fleet yet: a table with one is refused by
//! `dyegate push` before anything is written, and one written behind dyegate's back (etcdctl)
//! is rejected with the error located at its key while the last good table serves. Never
//! accepted and ignored.

use dyegate_suite::etcd::fleet::{answered_by, Fleet, PREFIX, SETTLE};

/// A route `all` to blue, its rollout ramping green behind a shadow stage.
fn with_shadow(fleet: &Fleet) -> String {
    let routes = fleet.routes_to("blue");
    let head = routes
        .split("routes:")
        .next()
        .unwrap_or_default()
        .to_string();
    format!("{head}{}", route_with_shadow())
}

fn route_with_shadow() -> &'static str {
    "routes:\n  - name: all\n    split: [{ upstream: blue, weight: 100 }, { upstream: green, weight: 0 }]\n    rollout:\n      canary: green\n      steps: [10, 100]\n      step_ms: 1000\n      gates: { max_error_rate: 0.05 }\n      shadow: { duration_ms: 1000, gates: { max_error_rate: 0.05 } }\n"
}

const REFUSAL: &str = "routes[0].rollout.shadow: found a shadow stage in a fleet's table, expected none: a fleet's rollouts have no shadow stage yet (docs/rollouts.md#shadow-stage); run it on a gateway with a routes file";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleets_table_with_a_shadow_stage_is_refused_where_the_stage_is() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let good = fleet.push(&config, "blue");
    let gw = config.start();
    let before = fleet.etcd.revision();

    let out = fleet
        .push_text(gw.config(), &with_shadow(&fleet))
        .expect_err("refused");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains(&format!("push.yaml:12:15: {REFUSAL}")),
        "{out}"
    );
    assert!(out.stderr.contains("nothing was written"), "{out}");
    assert_eq!(fleet.etcd.revision(), before, "nothing written");

    // Written behind dyegate's back: rejected at its key, the last good table serves.
    let key = format!("{PREFIX}tables/{}/routes/000001-all", fleet.generation());
    let value = route_with_shadow()
        .trim_start_matches("routes:\n")
        .replace("\n  ", "\n");
    let value = value.trim_start_matches("  ").to_string();
    fleet.etcd.ctl_ok(&["put", "--", &key, &value]);
    let rejected = fleet.etcd.revision();
    let status = gw
        .wait_for_status(SETTLE, "the rejected revision", |s| {
            s["etcd"]["rejected_revision"] == rejected
        })
        .await;
    let errors = status["last_error"]["errors"].to_string();
    assert!(
        errors.contains(&format!("etcd:{key}:8:")) && errors.contains(REFUSAL),
        "{status:#}"
    );
    assert_eq!(status["version"], good, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");
}
