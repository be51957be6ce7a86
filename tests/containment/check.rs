//! `dyegate check` on the containment sections of routes.yaml (timeouts, retries, health,
//! outlier, breaker) and gateway.yaml (`debug`): a valid file is OK, each mistake is one whole
//! `FILE:LINE:COL: field.path: message` line and exit code 1.

use dyegate_suite::{CliOutput, GatewayConfig};

const UPS: &str = "upstreams:\n  a: { targets: [\"127.0.0.1:9001\", \"127.0.0.1:9002\"] }\n";

fn route_with(extra: &str) -> String {
    format!("{UPS}routes:\n  - name: r\n{extra}    split: [{{ upstream: a, weight: 1 }}]\n")
}

/// Checks `routes` and returns the config (kept alive for its paths) and the output.
fn check(routes: &str) -> (GatewayConfig, CliOutput) {
    let config = GatewayConfig::new(routes);
    let out = config.check();
    (config, out)
}

/// Asserts exit code 1 and exactly these error lines (`FILE` stands for routes.yaml's path).
fn assert_errors(config: &GatewayConfig, out: &CliOutput, want: &[&str]) {
    assert!(!out.timed_out, "{out}");
    assert_eq!(out.code, Some(1), "{out}");
    let file = config.routes_file().display().to_string();
    let got: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with(&file))
        .map(|l| l.replacen(&file, "FILE", 1))
        .collect();
    assert_eq!(got, want, "{out}");
}

#[test]
fn valid_timeouts_are_ok() {
    let (_config, out) = check(&route_with(
        "    timeouts: { connect_ms: 1000, read_ms: 15000, write_ms: 15000, total_ms: 30000 }\n",
    ));
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout.trim_end(), "OK: 1 routes, 1 upstreams", "{out}");
}

#[test]
fn bad_timeouts_are_located() {
    let (config, out) = check(&route_with("    timeouts: { write_ms: 0, wrte_ms: 5 }\n"));
    assert_errors(
        &config,
        &out,
        &["FILE:5:27: routes[0].timeouts.write_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"],
    );
    // 0 is "no read timeout" for read_ms alone.
    let (config, out) = check(&route_with("    timeouts: { read_ms: -1 }\n"));
    assert_errors(
        &config,
        &out,
        &["FILE:5:26: routes[0].timeouts.read_ms: found -1, expected a whole number of milliseconds from 0 to 86400000"],
    );
    let (config, out) = check(&route_with("    timeouts: { wrte_ms: 5 }\n"));
    assert_errors(
        &config,
        &out,
        &["FILE:5:17: routes[0].timeouts.wrte_ms: found unknown field `wrte_ms`, expected one of `connect_ms`, `read_ms`, `write_ms`, `total_ms`, `stream_idle_ms`"],
    );
}

#[test]
fn valid_containment_sections_are_ok() {
    let (_config, out) = check(
        "upstreams:
  a:
    targets: [\"127.0.0.1:9001\", \"127.0.0.1:9002\"]
    health: { http: { path: /healthz, host: shop.internal, expect: [200, 204] }, interval_ms: 1000, timeout_ms: 500, unhealthy_after: 2, healthy_after: 2 }
    outlier: { consecutive_failures: 5, eject_ms: 10000, max_ejected_percent: 50 }
    max_in_flight: 1000
  b: { targets: [\"127.0.0.1:9003\"], health: { tcp: true } }
routes:
  - name: r
    retries: { attempts: 2, on: [connect_failure, reset, timeout, \"502\", \"503\"], budget_percent: 20 }
    dye: { tags: { canary: b }, on_unhealthy_tag: reject }
    split: [{ upstream: a, weight: 1 }]
",
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout.trim_end(), "OK: 1 routes, 2 upstreams", "{out}");
}

#[test]
fn every_bad_containment_field_is_located() {
    let (config, out) = check(
        "upstreams:
  a:
    targets: [\"127.0.0.1:9001\"]
    health: { http: { path: healthz } }
    outlier: { eject_ms: 0 }
    max_in_flight: 0
routes:
  - name: r
    retries: { on: [sometimes] }
    dye: { on_unhealthy_tag: drop }
    split: [{ upstream: a, weight: 1 }]
",
    );
    assert_errors(
        &config,
        &out,
        &[
            "FILE:4:29: upstreams.a.health.http.path: found \"healthz\", expected a path starting with / such as /healthz",
            "FILE:5:26: upstreams.a.outlier.eject_ms: found 0, expected a whole number of milliseconds from 1 to 86400000",
            "FILE:6:20: upstreams.a.max_in_flight: found 0, expected a whole number from 1 to 1000000",
            "FILE:9:21: routes[0].retries.on[0]: found \"sometimes\", expected one of `connect_failure`, `reset`, `timeout`, `500`, `502`, `503`, `504`",
            "FILE:10:30: routes[0].dye.on_unhealthy_tag: found \"drop\", expected one of `base`, `reject`",
        ],
    );
}

#[test]
fn a_bad_debug_section_of_gateway_yaml_is_located() {
    let config = GatewayConfig::new(&route_with(""))
        .with_gateway_extra("debug: { trusted_sources: [127.0.0.1, 10.0.0.0/33], trusted: [] }\n");
    let out = config.check();
    assert_eq!(out.code, Some(1), "{out}");
    let file = config.gateway_file().display().to_string();
    let got: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with(&file))
        .map(|l| l.replacen(&file, "FILE", 1))
        .collect();
    assert_eq!(got.len(), 1, "{out}");
    assert!(
        got[0].contains("debug.trusted: found unknown field `trusted`, expected `trusted_sources`"),
        "{out}"
    );
    let config = GatewayConfig::new(&route_with(""))
        .with_gateway_extra("debug: { trusted_sources: [127.0.0.1, 10.0.0.0/33] }\n");
    let out = config.check();
    assert_eq!(out.code, Some(1), "{out}");
    let file = config.gateway_file().display().to_string();
    assert!(
        out.lines().any(|l| l.starts_with(&file) && l.ends_with("debug.trusted_sources[1]: found \"10.0.0.0/33\", expected an IP network such as 127.0.0.0/8 or an IP address")),
        "{out}"
    );
}
