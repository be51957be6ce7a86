//! `dyegate check` and `dyegate run` on valid and invalid configs: the `OK:` summary, and for
//! each mistake one line `FILE:LINE:COL: field.path: message` with exit code 1.
//!
//! The exact message texts are pinned by the gateway's unit tests; here the file, position,
//! field path and exit code are.

use std::path::Path;

use dyegate_suite::gateway::{dyegate_cli_in, gateway_yaml, workspace_root, CLI_TIMEOUT};
use dyegate_suite::{dyegate_cli, free_addr, CliOutput, GatewayConfig};

const VALID_ROUTES: &str = r#"upstreams:
  shop-stable: { targets: ["127.0.0.1:9001", "127.0.0.1:9011"] }
  shop-canary: { targets: ["127.0.0.1:9002"] }
  shop-feat42: { targets: [{ addr: "127.0.0.1:9003", weight: 2 }] }
routes:
  - name: shop
    match:
      host: shop.example.com
      path_prefix: /api
      methods: [GET, POST]
      headers: { x-client: [mobile, web] }
    dye:
      header: x-env-tag
      tags: { canary: shop-canary, feat-42: shop-feat42 }
      on_unknown_tag: base
      trusted_sources: [10.0.0.0/8, 127.0.0.1/32]
    split:
      - { upstream: shop-stable, weight: 95 }
      - { upstream: shop-canary, weight: 5 }
    sticky: header:x-user-id
  - name: wildcard
    match: { host: "*.example.com" }
    dye: { tags: { canary: shop-canary }, on_unknown_tag: reject }
    split: [{ upstream: shop-stable, weight: 1 }]
    sticky: cookie:uid
  - name: rest
    split: [{ upstream: shop-stable, weight: 1 }]
    sticky: client_ip
"#;

/// 1-based line and column of `token` in the first line of `yaml` that contains `line_marker`
/// (the marker makes the search unambiguous; the token is where the error points).
fn position(yaml: &str, line_marker: &str, token: &str) -> (usize, usize) {
    for (index, line) in yaml.lines().enumerate() {
        if line.contains(line_marker) {
            let col = line
                .find(token)
                .unwrap_or_else(|| panic!("{token:?} not in line {line:?}"));
            return (index + 1, col + 1);
        }
    }
    panic!("no line contains {line_marker:?}");
}

/// Asserts an error line `FILE:LINE:COL: FIELD: message` with a non-empty message.
fn assert_error_line(out: &CliOutput, file: &Path, (line, col): (usize, usize), field: &str) {
    let prefix = format!("{}:{line}:{col}: {field}: ", file.display());
    let found = out.line_starting_with(&prefix);
    assert!(
        found.is_some(),
        "no line starting with {prefix:?} in\n{out}"
    );
    let message = &found.unwrap_or_default()[prefix.len()..];
    assert!(!message.trim().is_empty(), "empty message in\n{out}");
}

fn assert_rejected(out: &CliOutput) {
    assert!(!out.timed_out, "dyegate did not exit:\n{out}");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.line_starting_with("OK:").is_none(),
        "an invalid config printed OK:\n{out}"
    );
}

/// Checks `routes` (the text of routes.yaml) with the suite's gateway.yaml.
fn check_routes(routes: &str) -> (GatewayConfig, CliOutput) {
    let config = GatewayConfig::new(routes);
    let out = config.check();
    (config, out)
}

#[test]
fn a_valid_config_is_ok_with_counts() {
    let (_config, out) = check_routes(VALID_ROUTES);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout.trim_end(), "OK: 3 routes, 3 upstreams", "{out}");
}

#[test]
fn an_explicit_routes_file_is_checked_instead_of_the_configured_one() {
    let config = GatewayConfig::new("this is: [not valid");
    let other = config.write("other-routes.yaml", VALID_ROUTES);
    let gateway = config.gateway_file();

    let out = dyegate_cli_in(
        config.dir(),
        [
            "check".as_ref(),
            "-c".as_ref(),
            gateway.as_os_str(),
            other.as_os_str(),
        ],
        CLI_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout.trim_end(), "OK: 3 routes, 3 upstreams", "{out}");

    // Without -c: only the routes file.
    let out = dyegate_cli_in(
        config.dir(),
        ["check".as_ref(), other.as_os_str()],
        CLI_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout.trim_end(), "OK: 3 routes, 3 upstreams", "{out}");
}

#[test]
fn a_negative_weight_names_its_split_entry() {
    let routes = VALID_ROUTES.replace(
        "{ upstream: shop-canary, weight: 5 }",
        "{ upstream: shop-canary, weight: -5 }",
    );
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    assert_error_line(
        &out,
        &config.routes_file(),
        position(&routes, "weight: -5", "-5"),
        "routes[0].split[1].weight",
    );
}

#[test]
fn a_split_to_an_unknown_upstream_names_the_reference() {
    let routes = VALID_ROUTES.replace(
        "- { upstream: shop-stable, weight: 95 }",
        "- { upstream: shop-nope, weight: 95 }",
    );
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    assert_error_line(
        &out,
        &config.routes_file(),
        position(&routes, "shop-nope", "shop-nope"),
        "routes[0].split[0].upstream",
    );
}

#[test]
fn a_tag_to_an_unknown_upstream_names_the_tag() {
    let routes = VALID_ROUTES.replace(
        "tags: { canary: shop-canary, feat-42: shop-feat42 }",
        "tags: { canary: shop-canary, feat-42: shop-feat43 }",
    );
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    assert_error_line(
        &out,
        &config.routes_file(),
        position(&routes, "shop-feat43", "shop-feat43"),
        "routes[0].dye.tags.feat-42",
    );
}

#[test]
fn a_misspelt_field_is_reported_at_its_key() {
    let routes = VALID_ROUTES.replace("      path_prefix: /api", "      path_prefx: /api");
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    let (line, col) = position(&routes, "path_prefx", "path_prefx");
    let prefix = format!(
        "{}:{line}:{col}: routes[0].match",
        config.routes_file().display()
    );
    let found = out.line_starting_with(&prefix);
    assert!(
        found.is_some(),
        "no line starting with {prefix:?} in\n{out}"
    );
    assert!(
        found.unwrap_or_default().contains("path_prefx"),
        "the message does not name the unknown field:\n{out}"
    );
}

#[test]
fn a_bad_cidr_in_trusted_sources_is_named_by_index() {
    let routes = VALID_ROUTES.replace("127.0.0.1/32]", "127.0.0.1/33]");
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    assert_error_line(
        &out,
        &config.routes_file(),
        position(&routes, "127.0.0.1/33", "127.0.0.1/33"),
        "routes[0].dye.trusted_sources[1]",
    );
}

#[test]
fn a_bad_unknown_tag_policy_is_named() {
    let routes = VALID_ROUTES.replace("on_unknown_tag: base", "on_unknown_tag: drop");
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    assert_error_line(
        &out,
        &config.routes_file(),
        position(&routes, "on_unknown_tag: drop", "drop"),
        "routes[0].dye.on_unknown_tag",
    );
}

#[test]
fn a_bad_sticky_key_is_named() {
    let routes = VALID_ROUTES.replace("sticky: header:x-user-id", "sticky: session:x-user-id");
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    assert_error_line(
        &out,
        &config.routes_file(),
        position(&routes, "sticky: session", "session"),
        "routes[0].sticky",
    );
}

#[test]
fn a_bad_target_address_is_named_by_group_and_index() {
    let routes = VALID_ROUTES.replace("\"127.0.0.1:9011\"", "\"not-an-address\"");
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    assert_error_line(
        &out,
        &config.routes_file(),
        position(&routes, "not-an-address", "\"not-an-address\""),
        "upstreams.shop-stable.targets[1]",
    );
}

#[test]
fn a_split_of_only_zero_weights_names_the_split() {
    let routes = VALID_ROUTES.replace(
        "    split: [{ upstream: shop-stable, weight: 1 }]\n    sticky: client_ip",
        "    split: [{ upstream: shop-stable, weight: 0 }]\n    sticky: client_ip",
    );
    assert_ne!(routes, VALID_ROUTES);
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    let prefix = format!("{}:", config.routes_file().display());
    assert!(
        out.lines()
            .any(|l| l.starts_with(&prefix) && l.contains(": routes[2].split")),
        "no error for routes[2].split in\n{out}"
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let routes = VALID_ROUTES
        .replace(
            "{ upstream: shop-canary, weight: 5 }",
            "{ upstream: shop-canary, weight: -5 }",
        )
        .replace(
            "split: [{ upstream: shop-stable, weight: 1 }]\n    sticky: cookie:uid",
            "split: [{ upstream: shop-gone, weight: 1 }]\n    sticky: cookie:uid",
        )
        .replace("127.0.0.1/32]", "127.0.0.1/33]");
    let (config, out) = check_routes(&routes);
    assert_rejected(&out);
    let file = config.routes_file();
    assert_error_line(
        &out,
        &file,
        position(&routes, "weight: -5", "-5"),
        "routes[0].split[1].weight",
    );
    assert_error_line(
        &out,
        &file,
        position(&routes, "shop-gone", "shop-gone"),
        "routes[1].split[0].upstream",
    );
    assert_error_line(
        &out,
        &file,
        position(&routes, "127.0.0.1/33", "127.0.0.1/33"),
        "routes[0].dye.trusted_sources[1]",
    );
}

#[test]
fn a_yaml_syntax_error_has_a_position() {
    let routes = "upstreams:\n  a: { targets: [\"127.0.0.1:1\" }\nroutes: []\n";
    let (config, out) = check_routes(routes);
    assert_rejected(&out);
    let prefix = format!("{}:2:", config.routes_file().display());
    assert!(
        out.line_starting_with(&prefix).is_some(),
        "no line starting with {prefix:?} in\n{out}"
    );
}

#[test]
fn an_error_in_gateway_yaml_names_that_file() {
    let config = GatewayConfig::new(VALID_ROUTES);
    let admin = free_addr();
    let text = gateway_yaml(free_addr(), admin).replacen("listen: [\"", "listen: [\"nope", 1);
    config.write("gateway.yaml", &text);

    let out = config.check();
    assert_rejected(&out);
    assert_error_line(
        &out,
        &config.gateway_file(),
        position(&text, "\"nope", "\"nope"),
        "listen[0]",
    );
}

#[test]
fn run_refuses_an_invalid_config_with_the_same_error() {
    let routes = VALID_ROUTES.replace(
        "{ upstream: shop-canary, weight: 5 }",
        "{ upstream: shop-canary, weight: -5 }",
    );
    let config = GatewayConfig::new(&routes);
    let out = config.run_to_exit();
    assert!(!out.timed_out, "dyegate run kept running:\n{out}");
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.code.is_some(), "killed by a signal:\n{out}");
    assert_error_line(
        &out,
        &config.routes_file(),
        position(&routes, "weight: -5", "-5"),
        "routes[0].split[1].weight",
    );
    // It never started listening.
    assert!(std::net::TcpStream::connect(config.proxy_addr()).is_err());
}

#[test]
fn the_shipped_example_config_passes_check() {
    let root = workspace_root();
    assert!(
        root.join("conf/gateway.yaml").exists() && root.join("conf/routes.yaml").exists(),
        "conf/gateway.yaml and conf/routes.yaml must exist"
    );
    let out = dyegate_cli(["check", "-c", "conf/gateway.yaml"]);
    assert_eq!(out.code, Some(0), "{out}");
    let ok = out.line_starting_with("OK: ");
    assert!(
        ok.is_some_and(|l| l.ends_with(" upstreams") && l.contains(" routes, ")),
        "{out}"
    );
}

#[test]
fn a_route_below_one_that_matches_everything_it_would_is_a_located_warning() {
    let routes = r#"upstreams:
  u: { targets: ["127.0.0.1:9001"] }
routes:
  - name: everything
    split: [{ upstream: u, weight: 1 }]
  - name: api
    match: { path_prefix: /api }
    split: [{ upstream: u, weight: 1 }]
"#;
    let (config, out) = check_routes(routes);
    // A warning, not an error: the table is valid and served as written.
    assert_eq!(out.code, Some(0), "{out}");
    let file = config.routes_file().display().to_string();
    assert_eq!(
        out.line_starting_with("warning: "),
        Some(format!("warning: {file}:6:9: routes[1]: route api is unreachable: route everything (routes[0]) above it matches every request it would; move it above, or narrow route everything").as_str()),
        "{out}"
    );
    assert!(
        out.line_starting_with("OK: 2 routes, 1 upstreams")
            .is_some(),
        "{out}"
    );
    // In the other order both are reachable: no warning.
    let reordered = r#"upstreams:
  u: { targets: ["127.0.0.1:9001"] }
routes:
  - name: api
    match: { path_prefix: /api }
    split: [{ upstream: u, weight: 1 }]
  - name: everything
    split: [{ upstream: u, weight: 1 }]
"#;
    let (_, out) = check_routes(reordered);
    assert!(out.line_starting_with("warning: ").is_none(), "{out}");
}
