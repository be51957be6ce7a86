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
    let (config, out) = check(&route_with("    timeouts: { read_ms: 0, wrte_ms: 5 }\n"));
    assert_errors(
        &config,
        &out,
        &["FILE:5:26: routes[0].timeouts.read_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"],
    );
    let (config, out) = check(&route_with("    timeouts: { wrte_ms: 5 }\n"));
    assert_errors(
        &config,
        &out,
        &["FILE:5:17: routes[0].timeouts.wrte_ms: found unknown field `wrte_ms`, expected one of `connect_ms`, `read_ms`, `write_ms`, `total_ms`"],
    );
}
