//! Bad input in the containment sections (timeouts, retries, health, outlier, breaker), each
//! pinned to its whole error line.

use crate::config::routes_from_text;
use crate::routing::{CheckKind, GroupPolicy, Retries, RetryReason, UnhealthyTag};

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
    let none = route_with("    timeouts: { read_ms: 0 }\n");
    let loaded = routes_from_text("routes.yaml", none.into_bytes(), None).expect("valid");
    assert_eq!(
        loaded.table.routes()[0].timeouts.read,
        None,
        "read_ms 0: no read timeout"
    );
    let loaded = routes_from_text("routes.yaml", route_with("").into_bytes(), None).expect("valid");
    assert_eq!(
        loaded.table.routes()[0].timeouts,
        crate::routing::Timeouts::default()
    );
    assert_eq!(
        loaded.table.routes()[0].timeouts.stream_idle,
        std::time::Duration::from_millis(300_000),
        "stream_idle_ms defaults to five minutes"
    );
}

#[test]
fn stream_idle_ms_compiles_and_is_checked() {
    let text = route_with("    timeouts: { read_ms: 500, stream_idle_ms: 3000 }\n");
    let loaded = routes_from_text("routes.yaml", text.into_bytes(), None).expect("valid");
    let t = loaded.table.routes()[0].timeouts;
    assert_eq!(t.read, Some(std::time::Duration::from_millis(500)));
    assert_eq!(t.stream_idle, std::time::Duration::from_millis(3000));
    assert_eq!(
        errors(&route_with("    timeouts: { stream_idle_ms: 0 }\n")),
        vec!["routes.yaml:6:33: routes[0].timeouts.stream_idle_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: { read_ms: 500, stream_idle_ms: forever }\n")),
        vec!["routes.yaml:6:47: routes[0].timeouts.stream_idle_ms: found \"forever\", expected a whole number of milliseconds from 1 to 86400000"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: { stream_idle: 3000 }\n")),
        vec!["routes.yaml:6:17: routes[0].timeouts.stream_idle: found unknown field `stream_idle`, expected one of `connect_ms`, `read_ms`, `write_ms`, `total_ms`, `stream_idle_ms`"]
    );
}

#[test]
fn timeouts_errors() {
    assert_eq!(
        errors(&route_with("    timeouts: { write_ms: 0 }\n")),
        vec!["routes.yaml:6:27: routes[0].timeouts.write_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: { read_ms: 86400001 }\n")),
        vec!["routes.yaml:6:26: routes[0].timeouts.read_ms: found 86400001, expected a whole number of milliseconds from 0 to 86400000"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: { reed_ms: 100 }\n")),
        vec!["routes.yaml:6:17: routes[0].timeouts.reed_ms: found unknown field `reed_ms`, expected one of `connect_ms`, `read_ms`, `write_ms`, `total_ms`, `stream_idle_ms`"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: { total_ms: -5, write_ms: soon }\n")),
        vec!["routes.yaml:6:27: routes[0].timeouts.total_ms: found -5, expected a whole number of milliseconds from 1 to 86400000"]
    );
    assert_eq!(
        errors(&route_with("    timeouts: 100\n")),
        vec!["routes.yaml:6:15: routes[0].timeouts: found 100, expected a mapping with fields `connect_ms`, `read_ms`, `write_ms`, `total_ms`, `stream_idle_ms`"]
    );
}

/// Upstream `a` with `extra` (inline mapping fields) added.
fn upstream_with(extra: &str) -> String {
    format!("upstreams:\n  a: {{ targets: [\"127.0.0.1:9001\"], {extra} }}\nroutes:\n  - name: r\n    split: [{{ upstream: a, weight: 1 }}]\n")
}

#[test]
fn containment_sections_compile() {
    let text = "upstreams:\n  a:\n    targets: [\"127.0.0.1:9001\"]\n    health:\n      http: { path: /healthz, host: shop.internal, expect: [200, 204] }\n      interval_ms: 1000\n      timeout_ms: 500\n      unhealthy_after: 3\n      healthy_after: 4\n    outlier: { consecutive_failures: 7, eject_ms: 2000, max_ejected_percent: 30 }\n    max_in_flight: 100\n  b: { targets: [\"127.0.0.1:9002\"], health: { tcp: true } }\nroutes:\n  - name: r\n    retries: { attempts: 2, on: [connect_failure, reset, timeout, \"502\", 503], budget_percent: 10 }\n    dye: { tags: { canary: b }, on_unhealthy_tag: reject }\n    split: [{ upstream: a, weight: 1 }]\n".to_string();
    let loaded = routes_from_text("routes.yaml", text.into_bytes(), None).expect("valid");
    let t = &loaded.table;
    let a = &t.groups()[0].policy;
    let h = a.health.as_ref().expect("health");
    assert_eq!(
        h.kind,
        CheckKind::Http {
            path: "/healthz".into(),
            host: Some("shop.internal".into()),
            expect: vec![200, 204]
        }
    );
    assert_eq!((h.unhealthy_after, h.healthy_after), (3, 4));
    let o = a.outlier.expect("outlier");
    assert_eq!(
        (
            o.consecutive_failures,
            o.eject.as_millis(),
            o.max_ejected_percent
        ),
        (7, 2000, 30)
    );
    assert_eq!(a.max_in_flight, Some(100));
    let b = t.groups()[1].policy.health.as_ref().expect("health");
    assert_eq!(
        (
            b.kind.clone(),
            b.interval.as_millis(),
            b.timeout.as_millis()
        ),
        (CheckKind::Tcp, 1000, 500)
    );
    let r = &t.routes()[0];
    assert_eq!(r.retries.attempts, 2);
    assert_eq!(r.retries.budget_percent, 10);
    for (reason, on) in [
        (RetryReason::ConnectFailure, true),
        (RetryReason::Reset, true),
        (RetryReason::Timeout, true),
        (RetryReason::Status502, true),
        (RetryReason::Status503, true),
        (RetryReason::Status500, false),
    ] {
        assert_eq!(r.retries.on.contains(reason), on, "{reason:?}");
    }
    assert_eq!(r.dye.on_unhealthy_tag, UnhealthyTag::Reject);
    // Defaults.
    let plain = routes_from_text("routes.yaml", route_with("").into_bytes(), None).expect("valid");
    assert_eq!(plain.table.routes()[0].retries, Retries::default());
    assert_eq!(plain.table.groups()[0].policy, GroupPolicy::default());
}

#[test]
fn retries_errors() {
    const ON: &str =
        "expected one of `connect_failure`, `reset`, `timeout`, `500`, `502`, `503`, `504`";
    for (fields, want) in [
        ("attempts: 11", "6:26: routes[0].retries.attempts: found 11, expected a whole number from 0 to 10".to_string()),
        ("on: [connect_failure, 404]", format!("6:38: routes[0].retries.on[1]: found 404, {ON}")),
        ("on: [sometimes]", format!("6:21: routes[0].retries.on[0]: found \"sometimes\", {ON}")),
        ("on: connect_failure", "6:20: routes[0].retries.on: found \"connect_failure\", expected a sequence".to_string()),
        ("budget_percent: 101", "6:32: routes[0].retries.budget_percent: found 101, expected a whole number of percent from 0 to 100".to_string()),
        ("tries: 1", "6:16: routes[0].retries.tries: found unknown field `tries`, expected one of `attempts`, `on`, `budget_percent`".to_string()),
    ] {
        assert_eq!(
            errors(&route_with(&format!("    retries: {{ {fields} }}\n"))),
            vec![format!("routes.yaml:{want}")],
            "{fields}"
        );
    }
    assert_eq!(
        errors(&route_with("    dye: { on_unhealthy_tag: drop }\n")),
        vec!["routes.yaml:6:30: routes[0].dye.on_unhealthy_tag: found \"drop\", expected one of `base`, `reject`"]
    );
}

#[test]
fn upstream_containment_errors() {
    let cases: [(&str, &[&str]); 6] = [
        (
            "health: { http: { path: healthz, host: \"a b\\n\" }, interval_ms: 100, timeout_ms: 200 }",
            &[
                "routes.yaml:2:61: upstreams.a.health.http.path: found \"healthz\", expected a path starting with / such as /healthz",
                "routes.yaml:2:76: upstreams.a.health.http.host: found \"a b\\n\", expected a host name such as shop.internal",
            ],
        ),
        (
            "health: { interval_ms: 100 }",
            &["routes.yaml:2:45: upstreams.a.health: found no kind of check, expected `http: { path: /healthz }` or `tcp: true`"],
        ),
        (
            "health: { tcp: true, http: {}, unhealthy_after: 0 }",
            &["routes.yaml:2:85: upstreams.a.health.unhealthy_after: found 0, expected a whole number from 1 to 1000"],
        ),
        (
            "health: { tcp: true, http: {} }",
            &["routes.yaml:2:52: upstreams.a.health.tcp: found both `http` and `tcp: true`, expected one kind of check"],
        ),
        (
            "health: { http: { expect: [200, 999] } }",
            &["routes.yaml:2:69: upstreams.a.health.http.expect[1]: found 999, expected a whole number from 100 to 599"],
        ),
        (
            "outlier: { consecutive_failures: 0, eject_ms: 0, max_ejected_percent: 150, after: 1 }, max_in_flight: -1, helth: 1",
            &[
                "routes.yaml:2:70: upstreams.a.outlier.consecutive_failures: found 0, expected a whole number from 1 to 1000",
                "routes.yaml:2:139: upstreams.a.max_in_flight: found -1, expected a whole number from 1 to 1000000",
                "routes.yaml:2:143: upstreams.a.helth: found unknown field `helth`, expected one of `targets`, `health`, `outlier`, `max_in_flight`, `protocol`, `tls`",
            ],
        ),
    ];
    for (fields, want) in cases {
        assert_eq!(errors(&upstream_with(fields)), want, "{fields}");
    }
    // Each field of a section on its own.
    for (fields, want) in [
        ("outlier: { eject_ms: 0 }", "2:58: upstreams.a.outlier.eject_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"),
        ("outlier: { max_ejected_percent: 150 }", "2:69: upstreams.a.outlier.max_ejected_percent: found 150, expected a whole number of percent from 0 to 100"),
        ("outlier: { after: 1 }", "2:48: upstreams.a.outlier.after: found unknown field `after`, expected one of `consecutive_failures`, `eject_ms`, `max_ejected_percent`"),
        ("health: { tcp: false }", "2:52: upstreams.a.health.tcp: found false, expected `tcp: true` or an `http` check"),
        ("health: { tcp: true, interval_ms: 0 }", "2:71: upstreams.a.health.interval_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"),
        ("health: 5", "2:45: upstreams.a.health: found 5, expected a mapping with fields `http`, `tcp`, `interval_ms`, `timeout_ms`, `unhealthy_after`, `healthy_after`"),
    ] {
        assert_eq!(errors(&upstream_with(fields)), vec![format!("routes.yaml:{want}")], "{fields}");
    }
}
