//! Bad input in the containment sections (timeouts, retries, health, outlier, breaker), each
//! pinned to its whole error line.

use super::routes_from_text;

fn errors(text: &str) -> Vec<String> {
    match routes_from_text("routes.yaml", text.as_bytes().to_vec(), None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const UPS: &str =
    "upstreams:\n  a: { targets: [\"127.0.0.1:9001\"] }\n  b: { targets: [\"127.0.0.1:9002\"] }\n";

/// A route `r` splitting to `a`, with `extra` (indented route fields) added.
fn route_with(extra: &str) -> String {
    format!("{UPS}routes:\n  - name: r\n{extra}    split: [{{ upstream: a, weight: 1 }}]\n")
}

#[test]
fn timeouts_compile() {
    let text = route_with(
        "    timeouts: { connect_ms: 1000, read_ms: 15000, write_ms: 15000, total_ms: 30000 }\n",
    );
    let loaded = routes_from_text("routes.yaml", text.into_bytes(), None).expect("valid");
    let t = loaded.table.routes()[0].timeouts;
    assert_eq!(t.connect, Some(std::time::Duration::from_millis(1000)));
    assert_eq!(t.total, Some(std::time::Duration::from_millis(30000)));
    let loaded = routes_from_text("routes.yaml", route_with("").into_bytes(), None).expect("valid");
    assert_eq!(
        loaded.table.routes()[0].timeouts,
        crate::routing::Timeouts::default()
    );
}

#[test]
fn timeouts_errors() {
    assert_eq!(
        errors(&route_with("    timeouts: { read_ms: 0 }\n")),
        vec!["routes.yaml:6:26: routes[0].timeouts.read_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: { reed_ms: 100 }\n")),
        vec!["routes.yaml:6:17: routes[0].timeouts.reed_ms: found unknown field `reed_ms`, expected one of `connect_ms`, `read_ms`, `write_ms`, `total_ms`"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: { total_ms: -5, write_ms: soon }\n")),
        vec!["routes.yaml:6:27: routes[0].timeouts.total_ms: found -5, expected a whole number of milliseconds from 1 to 86400000"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: 100\n")),
        vec!["routes.yaml:6:15: routes[0].timeouts: found 100, expected a mapping with fields `connect_ms`, `read_ms`, `write_ms`, `total_ms`"]
    );
}
