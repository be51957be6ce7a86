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
        vec!["routes.yaml:13:7: routes[0].rollout.stepms: found unknown field `stepms`, expected one of `canary`, `steps`, `step_ms`, `pause_before`, `gates`, `on_failure`, `hooks`, `shadow`"]
    );
    assert_eq!(
        with("max_error_rate: 0.02", "max_error_rate: 2"),
        vec!["routes.yaml:14:69: routes[0].rollout.gates.max_error_rate: found 2, expected a number from 0 to 1"]
    );
    assert_eq!(
        errors(&rollout("      canary: canary\n      steps: []\n      step_ms: 1000\n")),
        vec![
            "routes.yaml:10:13: routes[0].rollout.gates: found no gate, expected at least one of max_error_rate, max_latency_ms, max_latency_ratio, prometheus",
            "routes.yaml:11:14: routes[0].rollout.steps: found an empty list, expected canary shares in percent, e.g. [5, 20, 50, 100]",
        ]
    );
}

/// `rollout` with hooks and a Prometheus gate (the issue's example), `secret` its secret file.
fn with_hooks(secret: &str) -> String {
    format!(
        "      canary: canary\n      steps: [5, 20, 50, 100]\n      step_ms: 60000\n      hooks:\n        confirm_step: {{ url: \"http://release-bot:8000/confirm\", timeout_ms: 2000 }}\n        events: {{ url: \"http://release-bot:8000/events\", secret_file: {secret} }}\n      gates:\n        max_error_rate: 0.02\n        prometheus:\n          - name: checkout-errors\n            url: \"http://127.0.0.1:9090\"\n            query: 'sum(rate(checkout_failed_total{{version=\"canary\"}}[1m]))'\n            max: 0.5\n            interval_ms: 10000\n            on_error: pause\n"
    )
}

fn secret_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hook.secret");
    std::fs::write(&path, "s3cret\n").expect("write");
    (dir, path.display().to_string())
}

#[test]
fn hooks_and_prometheus_gates_compile_into_the_plan() {
    let (_dir, secret) = secret_file();
    let text = rollout(&with_hooks(&secret));
    assert_eq!(errors(&text), Vec::<String>::new());
    let loaded = routes_from_text("routes.yaml", text.into_bytes(), None).expect("valid");
    let plans = crate::config::table::compile_rollout::plans(&loaded.model);
    let plan = &plans["shop"];
    let confirm = plan.hooks.confirm_step.as_ref().expect("confirm_step");
    assert_eq!(
        (confirm.url.as_str(), confirm.timeout_ms),
        ("http://release-bot:8000/confirm", 2000)
    );
    let events = plan.hooks.events.as_ref().expect("events");
    assert_eq!(
        events.secret_file.as_deref(),
        Some(std::path::Path::new(&secret))
    );
    let g = &plan.gates.prometheus[0];
    assert_eq!(g.name, "checkout-errors");
    assert_eq!(
        g.query,
        "sum(rate(checkout_failed_total{version=\"canary\"}[1m]))"
    );
    assert_eq!((g.max, g.min, g.interval_ms), (Some(0.5), None, 10_000));
    assert_eq!(g.on_error, crate::rollout::prometheus::OnError::Pause);
}

#[test]
fn an_edit_of_a_hook_keeps_the_fingerprint_an_edit_of_a_gate_does_not() {
    let (_dir, secret) = secret_file();
    let fingerprint = |text: String| {
        let loaded = routes_from_text("routes.yaml", text.into_bytes(), None).expect("valid");
        crate::config::table::compile_rollout::plans(&loaded.model)["shop"]
            .fingerprint
            .clone()
    };
    let base = with_hooks(&secret);
    let hook = base.replace("8000/events", "8001/events");
    let gate = base.replace("max: 0.5", "max: 0.6");
    assert_eq!(fingerprint(rollout(&base)), fingerprint(rollout(&hook)));
    assert_ne!(fingerprint(rollout(&base)), fingerprint(rollout(&gate)));
}

#[test]
fn hook_and_prometheus_errors_are_located() {
    let (_dir, secret) = secret_file();
    let with = |from: &str, to: &str| errors(&rollout(&with_hooks(&secret).replace(from, to)));
    assert_eq!(
        with("http://release-bot:8000/confirm", "ftp://release-bot/confirm"),
        vec!["routes.yaml:14:30: routes[0].rollout.hooks.confirm_step.url: found \"ftp://release-bot/confirm\", expected an http:// or https:// URL with a host, such as http://release-bot:8000/confirm"]
    );
    assert_eq!(
        with("timeout_ms: 2000", "timeout_ms: 0"),
        vec!["routes.yaml:14:77: routes[0].rollout.hooks.confirm_step.timeout_ms: found 0, expected a whole number of milliseconds from 1 to 60000"]
    );
    assert_eq!(
        with(&secret, "hook.secret"),
        vec!["routes.yaml:15:71: routes[0].rollout.hooks.events.secret_file: found \"hook.secret\", expected an absolute path (the routes may come from etcd, where no directory is theirs)"]
    );
    let missing = format!("{secret}.gone");
    assert_eq!(
        with(&secret, &missing),
        vec![format!("routes.yaml:15:71: routes[0].rollout.hooks.events.secret_file: found {missing}: No such file or directory (os error 2), expected a readable file holding the secret")]
    );
    assert_eq!(
        with("secret_file:", "secret:"),
        vec!["routes.yaml:15:58: routes[0].rollout.hooks.events.secret: found unknown field `secret`, expected one of `url`, `secret_file`"]
    );
    assert_eq!(
        with("\"http://127.0.0.1:9090\"", "\"127.0.0.1:9090\""),
        vec!["routes.yaml:20:18: routes[0].rollout.gates.prometheus[0].url: found \"127.0.0.1:9090\", expected an http:// or https:// URL with a host, such as http://release-bot:8000/confirm"]
    );
    assert_eq!(
        with("max: 0.5", "maximum: 0.5"),
        vec!["routes.yaml:22:13: routes[0].rollout.gates.prometheus[0].maximum: found unknown field `maximum`, expected one of `name`, `url`, `query`, `max`, `min`, `interval_ms`, `on_error`"]
    );
    assert_eq!(
        with("max: 0.5", "min: 0.5\n            max: 0.1"),
        vec!["routes.yaml:22:18: routes[0].rollout.gates.prometheus[0].min: found 0.5 above max 0.1, expected min <= max"]
    );
    assert_eq!(
        with("            max: 0.5\n", ""),
        vec!["routes.yaml:19:17: routes[0].rollout.gates.prometheus[0]: found neither `max` nor `min`, expected at least one bound for the query's value"]
    );
    assert_eq!(
        with("on_error: pause", "on_error: retry"),
        vec!["routes.yaml:24:23: routes[0].rollout.gates.prometheus[0].on_error: found \"retry\", expected one of `pause`, `fail`, `ignore`"]
    );
    assert_eq!(
        with("interval_ms: 10000", "interval_ms: 10"),
        vec!["routes.yaml:23:26: routes[0].rollout.gates.prometheus[0].interval_ms: found 10, expected a whole number of milliseconds from 100 to 3600000"]
    );
    assert_eq!(
        with("name: checkout-errors", "name: error_rate"),
        vec!["routes.yaml:19:19: routes[0].rollout.gates.prometheus[0].name: found \"error_rate\", the name of a built-in gate, expected another name"]
    );
    assert_eq!(
        with("        max_error_rate: 0.02\n", ""),
        Vec::<String>::new(),
        "a Prometheus gate alone is a gate"
    );
}

const SHADOW: &str = "      canary: canary\n      steps: [10, 100]\n      step_ms: 1000\n      gates: { max_error_rate: 0.05 }\n      shadow:\n        percent: 50\n        duration_ms: 60000\n        gates: { max_error_rate: 0.01, max_latency_ms: 800, latency_percentile: 95, max_mismatch_rate: 0.02, min_requests: 50 }\n";

#[test]
fn a_shadow_stage_is_valid_and_planned() {
    assert_eq!(errors(&rollout(SHADOW)), Vec::<String>::new());
    let loaded =
        routes_from_text("routes.yaml", rollout(SHADOW).into_bytes(), None).expect("valid");
    let plans = super::compile_rollout::plans(&loaded.model);
    let s = plans["shop"].shadow.as_ref().expect("shadow");
    assert_eq!((s.share, s.duration_ms), (50_000, 60_000));
    assert_eq!((s.gates.window_ms, s.gates.min_requests), (60_000, 50));
    assert_eq!(s.gates.max_mismatch_rate, Some(0.02));
    // The stage is part of the plan: an edit of it starts the rollout again.
    let other = rollout(&SHADOW.replace("percent: 50", "percent: 100"));
    let other = routes_from_text("routes.yaml", other.into_bytes(), None).expect("valid");
    let other = super::compile_rollout::plans(&other.model);
    assert_ne!(plans["shop"].fingerprint, other["shop"].fingerprint);
    assert_eq!(
        other["shop"].shadow.as_ref().map(|s| s.share),
        Some(100_000)
    );
}

#[test]
fn shadow_errors_are_located() {
    let with = |from: &str, to: &str| errors(&rollout(&SHADOW.replace(from, to)));
    assert_eq!(
        with("percent: 50", "percent: 0"),
        vec!["routes.yaml:15:18: routes[0].rollout.shadow.percent: found 0, expected a number from 0.001 to 100"]
    );
    assert_eq!(
        with("max_mismatch_rate: 0.02", "max_mismatch_rate: 1.5"),
        vec!["routes.yaml:17:104: routes[0].rollout.shadow.gates.max_mismatch_rate: found 1.5, expected a number from 0 to 1"]
    );
    assert_eq!(
        with("max_error_rate: 0.01", "max_error_rate: -1"),
        vec!["routes.yaml:17:34: routes[0].rollout.shadow.gates.max_error_rate: found -1, expected a number from 0 to 1"]
    );
    assert_eq!(
        with("duration_ms: 60000", "duration_ms: 0"),
        vec!["routes.yaml:16:22: routes[0].rollout.shadow.duration_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"]
    );
    assert_eq!(
        with("duration_ms: 60000", "duration: 60000"),
        vec!["routes.yaml:16:9: routes[0].rollout.shadow.duration: found unknown field `duration`, expected one of `percent`, `duration_ms`, `gates`"]
    );
    let given = rollout(SHADOW).replace(
        "{ upstream: canary, weight: 0 }",
        "{ upstream: canary, weight: 10 }",
    );
    assert_eq!(
        errors(&given),
        vec!["routes.yaml:15:16: routes[0].rollout.shadow: found the canary \"canary\" at weight 10 in the split, expected weight 0 with a shadow stage: the stage runs before any untagged request reaches the canary"]
    );
    assert_eq!(
        with("min_requests: 50", "max_p99_ms: 50"),
        vec!["routes.yaml:17:110: routes[0].rollout.shadow.gates.max_p99_ms: found unknown field `max_p99_ms`, expected one of `min_requests`, `max_error_rate`, `max_latency_ms`, `latency_percentile`, `max_mismatch_rate`"]
    );
    assert_eq!(
        with("max_error_rate: 0.01, max_latency_ms: 800, latency_percentile: 95, max_mismatch_rate: 0.02, ", ""),
        vec!["routes.yaml:17:16: routes[0].rollout.shadow.gates: found no gate, expected at least one of max_error_rate, max_latency_ms, max_mismatch_rate"]
    );
}
