//! Bad input in `routes[i].rollout`, each pinned to its whole error line.

use crate::config::routes_from_text;

fn errors(text: &str) -> Vec<String> {
    match routes_from_text("routes.yaml", text.as_bytes().to_vec(), None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// Route `shop` splitting stable/canary, with `rollout` (the indented lines under it).
fn rollout(body: &str) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"127.0.0.1:9001\"] }}\n  canary: {{ targets: [\"127.0.0.1:9002\"] }}\nroutes:\n  - name: shop\n    split:\n      - {{ upstream: stable, weight: 100 }}\n      - {{ upstream: canary, weight: 0 }}\n    rollout:\n{body}"
    )
}

const GOOD: &str = "      canary: canary\n      steps: [5, 20, 50, 100]\n      step_ms: 60000\n      pause_before: [50]\n      gates: { window_ms: 30000, min_requests: 100, max_error_rate: 0.02, max_latency_ms: 1200, latency_percentile: 95, max_latency_ratio: 1.5 }\n      on_failure: rollback\n";

#[test]
fn the_issue_example_is_valid() {
    assert_eq!(errors(&rollout(GOOD)), Vec::<String>::new());
    let minimal = "      canary: canary\n      steps: [10, 100]\n      step_ms: 1000\n      gates: { max_error_rate: 0.05 }\n";
    assert_eq!(errors(&rollout(minimal)), Vec::<String>::new());
}

#[test]
fn errors_are_located() {
    let with = |from: &str, to: &str| errors(&rollout(&GOOD.replace(from, to)));
    assert_eq!(
        with("canary: canary", "canary: shop-canary"),
        vec!["routes.yaml:10:15: routes[0].rollout.canary: found \"shop-canary\", expected a group of this route's split (one of `stable`, `canary`)"]
    );
    assert_eq!(
        with("[5, 20, 50, 100]", "[5, 50, 20, 100]"),
        vec!["routes.yaml:11:22: routes[0].rollout.steps[2]: found 20 after 50, expected steps strictly increasing"]
    );
    assert_eq!(
        with("[5, 20, 50, 100]", "[5, 20, 50, 120]"),
        vec!["routes.yaml:11:26: routes[0].rollout.steps[3]: found 120, expected a whole number of percent from 1 to 100"]
    );
    assert_eq!(
        with("window_ms: 30000", "window_ms: 0"),
        vec!["routes.yaml:14:27: routes[0].rollout.gates.window_ms: found 0, expected a whole number of milliseconds from 1 to 300000"]
    );
    assert_eq!(
        with("pause_before: [50]", "pause_before: [30]"),
        vec!["routes.yaml:13:22: routes[0].rollout.pause_before[0]: found 30, expected one of the steps"]
    );
    assert_eq!(
        with("on_failure: rollback", "on_failure: retreat"),
        vec!["routes.yaml:15:19: routes[0].rollout.on_failure: found \"retreat\", expected one of `rollback`, `pause`"]
    );
    assert_eq!(
        with("step_ms: 60000", "step_ms: 60000\n      stepms: 5"),
        vec!["routes.yaml:13:7: routes[0].rollout.stepms: found unknown field `stepms`, expected one of `canary`, `steps`, `step_ms`, `pause_before`, `gates`, `on_failure`"]
    );
    assert_eq!(
        with("max_error_rate: 0.02", "max_error_rate: 2"),
        vec!["routes.yaml:14:69: routes[0].rollout.gates.max_error_rate: found 2, expected a number from 0 to 1"]
    );
    assert_eq!(
        errors(&rollout("      canary: canary\n      steps: []\n      step_ms: 1000\n")),
        vec![
            "routes.yaml:10:13: routes[0].rollout.gates: found no gate, expected at least one of max_error_rate, max_latency_ms, max_latency_ratio",
            "routes.yaml:11:14: routes[0].rollout.steps: found an empty list, expected canary shares in percent, e.g. [5, 20, 50, 100]",
        ]
    );
}
