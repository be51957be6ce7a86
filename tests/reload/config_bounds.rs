//! Bounded work on config input (issue 17), end to end: a routes file nested 100,000 levels
//! deep or past `reload.max_file_bytes` is rejected, located, fast, by `dyegate check`, at
//! startup and on a live reload (the running table keeps serving).

use std::time::{Duration, Instant};

use dyegate_suite::{GatewayConfig, Req, Upstream};

/// The 40-byte-per-level kind of file of the issue: `routes: [[[[...]]]]`.
fn nested(depth: usize) -> String {
    format!("routes: {}{}\n", "[".repeat(depth), "]".repeat(depth))
}

fn routes_to(up: &Upstream) -> String {
    format!(
        "upstreams:\n  blue: {{ targets: [\"{}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: blue, weight: 1 }}]\n",
        up.target()
    )
}

#[test]
fn check_rejects_a_100000_level_file_located_and_fast() {
    let cfg = GatewayConfig::new(&nested(100_000));
    let _ = dyegate_suite::gateway::dyegate_bin(); // built once per test process, not timed
    let started = Instant::now();
    let out = cfg.check();
    let took = started.elapsed();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        format!(
            "{}:1:137: nesting deeper than 128 levels",
            cfg.routes_file().display()
        )
    );
    // A debug build, on a loaded box, process start included: the quadratic parse took 30 s+.
    assert!(took < Duration::from_secs(5), "dyegate check took {took:?}");
}

#[test]
fn max_file_bytes_from_gateway_yaml_applies_to_check_and_run() {
    let up = Upstream::start("blue");
    let mut routes = routes_to(&up);
    routes.push_str(&format!("# {}\n", "x".repeat(2000)));
    let cfg = GatewayConfig::new(&routes).gateway_extra("reload: { max_file_bytes: 1000 }");
    let expected = format!(
        "{}:1:1: found a file of {} bytes, expected at most 1000 (reload.max_file_bytes)",
        cfg.routes_file().display(),
        routes.len()
    );
    let out = cfg.check();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout.trim(), expected);
    let out = cfg.run_to_exit();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(&expected), "{out:?}");
}

#[tokio::test]
async fn a_live_reload_of_a_deep_or_oversized_file_fails_and_the_table_keeps_serving() {
    let up = Upstream::start("blue");
    let gw = GatewayConfig::new(&routes_to(&up))
        .gateway_extra("reload: { max_file_bytes: 100000 }")
        .start();
    let path = gw.config().routes_file().display().to_string();

    let started = Instant::now();
    gw.config()
        .write_and_rename("routes.yaml", &nested(100_000)[..99_000]);
    let status = gw
        .wait_for_status(Duration::from_secs(15), "failed deep reload", |s| {
            s["reloads"]["failed"] == 1
        })
        .await;
    assert_eq!(
        status["last_error"]["errors"],
        serde_json::json!([format!("{path}:1:137: nesting deeper than 128 levels")]),
        "{status:#}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    gw.config()
        .write_and_rename("routes.yaml", &nested(100_000));
    let status = gw
        .wait_for_status(Duration::from_secs(15), "failed oversized reload", |s| {
            s["reloads"]["failed"] == 2
        })
        .await;
    assert_eq!(
        status["last_error"]["errors"],
        serde_json::json!([format!(
            "{path}:1:1: found a file of 200009 bytes, expected at most 100000 (reload.max_file_bytes)"
        )]),
        "{status:#}"
    );
    assert_eq!(status["version"], 1, "{status:#}");
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.upstream(), Some("blue"));
}
