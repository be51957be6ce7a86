//! Prometheus gates end to end: a real Prometheus (Debian's `prometheus`) scraping an exporter
//! the test sets, queried by the real binary. A value crossing `max` aborts the rollout, with
//! the last value, its time and the query in the status; an unreachable Prometheus pauses it
//! (`on_error: pause`) or lets it go on (`on_error: ignore`).

use std::time::Duration;

use dyegate_suite::prometheus::{Exporter, Prometheus};
use dyegate_suite::rollout::*;
use dyegate_suite::traffic::Traffic;
use dyegate_suite::{free_addr, Dyegate};

const QUERY: &str = "max(checkout_errors{version=\\\"canary\\\"})";

fn gate(url: &str, on_error: &str) -> String {
    format!(
        "steps: [10, 50, 100], step_ms: 1000, gates: {{ window_ms: 1000, min_requests: 20, max_error_rate: 0.05, prometheus: [{{ name: checkout-errors, url: \"{url}\", query: \"{QUERY}\", max: 0.5, interval_ms: 300, on_error: {on_error} }}] }}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_crossing_max_aborts_the_rollout() {
    let exporter = Exporter::start(0.1);
    let prometheus = Prometheus::start(&exporter);
    let (stable, canary) = upstreams();
    // Steps of 3 s: time to see the gate hold on step 1 before the value goes up.
    let fields = gate(&prometheus.url(), "pause").replace("step_ms: 1000", "step_ms: 3000");
    let gw = Dyegate::start(&routes(&stable, &canary, &fields, ""));
    let traffic = Traffic::start(gw.addr(), 4, Duration::from_millis(4), vec![]);
    let r = wait_rollout(&gw, Duration::from_secs(30), "a value of step 1", |r| {
        r["step"] == 1 && r["last_evaluation"]["prometheus"][0]["fresh"] == true
    })
    .await;
    let p = &r["last_evaluation"]["prometheus"][0];
    assert_eq!(p["gate"], "checkout-errors", "{r:#}");
    assert_eq!(
        p["query"], "max(checkout_errors{version=\"canary\"})",
        "{r:#}"
    );
    assert_eq!(p["value"], 0.1, "{r:#}");
    assert_eq!(p["ok"], true, "{r:#}");
    assert!(p["at"].is_string(), "{r:#}");
    assert_eq!(r["state"], "progressing", "{r:#}");
    exporter.set(0.9);
    let r = wait_rollout(&gw, Duration::from_secs(30), "the abort", |r| {
        r["state"] == "failed"
    })
    .await;
    let _ = traffic.stop().await;
    assert_eq!(r["canary_share"], 0.0, "{r:#}");
    let reason = last_reason(&r);
    assert!(
        reason.starts_with("prometheus gate checkout-errors breached: 0.9 (max 0.5; query \"max(checkout_errors{version=\\\"canary\\\"})\" at "),
        "{reason}\n{r:#}"
    );
    let m = gw.metrics().await;
    let breaches = m.value(
        "dyegate_rollout_gate_breaches_total",
        &[("route", "shop"), ("gate", "checkout-errors")],
    );
    assert!(breaches >= 1.0, "{breaches}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_prometheus_pauses_the_rollout_with_on_error_pause() {
    // Nothing listens there.
    let url = format!("http://{}", free_addr());
    let (stable, canary) = upstreams();
    let gw = Dyegate::start(&routes(&stable, &canary, &gate(&url, "pause"), ""));
    let traffic = Traffic::start(gw.addr(), 4, Duration::from_millis(4), vec![]);
    let r = wait_rollout(&gw, Duration::from_secs(30), "the pause", |r| {
        r["state"] == "paused"
    })
    .await;
    let _ = traffic.stop().await;
    // The first step goes (nothing to judge before it); its own queries fail: held there.
    assert_eq!(r["step"], 1, "{r:#}");
    let reason = last_reason(&r);
    let want = format!("prometheus gate checkout-errors: query \"max(checkout_errors{{version=\\\"canary\\\"}})\": connect to {}: ", url.trim_start_matches("http://"));
    assert!(reason.starts_with(&want), "{reason}\n{r:#}");
    assert!(
        reason.ends_with("(on_error: pause; resume when it answers)"),
        "{reason}"
    );
    let p = &r["last_evaluation"]["prometheus"][0];
    assert!(
        p["error"]
            .as_str()
            .is_some_and(|e| e.contains("connect to")),
        "{r:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_prometheus_is_passed_over_with_on_error_ignore() {
    let url = format!("http://{}", free_addr());
    let (stable, canary) = upstreams();
    let gw = Dyegate::start(&routes(&stable, &canary, &gate(&url, "ignore"), ""));
    let traffic = Traffic::start(gw.addr(), 4, Duration::from_millis(4), vec![]);
    let r = wait_rollout(&gw, Duration::from_secs(40), "success", |r| {
        r["state"] == "succeeded" || r["state"] == "paused" || r["state"] == "failed"
    })
    .await;
    let _ = traffic.stop().await;
    assert_eq!(r["state"], "succeeded", "{r:#}");
    assert_eq!(r["step"], 3, "{r:#}");
}

/// The reason of the rollout's last move (empty without one).
fn last_reason(r: &serde_json::Value) -> String {
    (r["history"].as_array().and_then(|h| h.last()))
        .and_then(|m| m["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}
