//! Unit tests of `metrics.rs`.

use super::*;
use crate::config::routes_from_text;
use crate::telemetry::text_format::esc;

#[test]
fn series_exist_at_zero_and_count() {
    let m = Metrics::new();
    let t = routes_from_text(
        "r.yaml",
        b"upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\n  c: { targets: [\"127.0.0.1:2\"] }\nroutes:\n  - { name: shop, dye: { tags: { canary: c } }, split: [{ upstream: s, weight: 9 }, { upstream: c, weight: 1 }] }\n".to_vec(), None,
    )
    .expect("valid")
    .table;
    let tm = m.for_table(&t, None);
    let text = m.render();
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="canary",route="shop",status_class="2xx",upstream_group="c"} 0"#
    ), "{text}");
    assert!(text
        .contains(r#"dyegate_decisions_total{reason="sticky",route="shop",upstream_group="s"} 0"#));
    tm.request(
        0,
        1,
        Some("canary"),
        Reason::Tag,
        StatusClass::of(200),
        0.003,
    );
    tm.request(
        0,
        0,
        Some("made-up"),
        Reason::Fallback,
        StatusClass::of(502),
        0.001,
    );
    tm.upstream_error(0, "127.0.0.1:1".parse().expect("addr"), 0);
    let text = m.render();
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="canary",route="shop",status_class="2xx",upstream_group="c"} 1"#
    ));
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="other",route="shop",status_class="5xx",upstream_group="s"} 1"#
    ));
    assert!(text.contains(
        r#"dyegate_upstream_errors_total{kind="connect_refused",target="127.0.0.1:1",upstream_group="s"} 1"#
    ));
    assert!(text
        .contains(r#"dyegate_request_duration_seconds_count{route="shop",upstream_group="c"} 1"#));
    assert!(text.contains(
        r#"dyegate_request_duration_seconds_bucket{route="shop",upstream_group="c",le="0.0025"} 0"#
    ));
    assert!(text.contains(
        r#"dyegate_request_duration_seconds_bucket{route="shop",upstream_group="c",le="0.005"} 1"#
    ));

    // A new table of the same routes keeps counting on the same series.
    let tm2 = m.for_table(&t, None);
    tm2.request(
        0,
        1,
        Some("canary"),
        Reason::Tag,
        StatusClass::of(204),
        0.003,
    );
    tm2.rejected(0, 503);
    tm2.no_route(404);
    let text = m.render();
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="canary",route="shop",status_class="2xx",upstream_group="c"} 2"#
    ));
    assert!(text.contains(
        r#"dyegate_decisions_total{reason="reject",route="shop",upstream_group="none"} 1"#
    ));
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="other",route="shop",status_class="5xx",upstream_group="none"} 1"#
    ));
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="none",route="none",status_class="4xx",upstream_group="none"} 1"#
    ));
    assert!(text.contains("dyegate_routing_version 0"));
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(esc(r#"a"b\c"#), r#"a\"b\\c"#);
    assert_eq!(esc("plain"), "plain");
}

/// Route `mix`: untagged to `s` (HTTP/1), tag `canary` to `g`, spoken to with `g_protocol`.
fn mix_table(g_protocol: &str) -> Arc<RouteTable> {
    let text = format!("upstreams:\n  s: {{ targets: [\"127.0.0.1:1\"] }}\n  g: {{ targets: [\"127.0.0.1:2\"]{g_protocol} }}\nroutes:\n  - {{ name: mix, dye: {{ tags: {{ canary: g }} }}, split: [{{ upstream: s, weight: 1 }}] }}\n");
    routes_from_text("r.yaml", text.into_bytes(), None)
        .expect("valid")
        .table
}

/// A request of route 0 to `group` with `tag`, its status and `grpc-status`.
fn record(tm: &TableMetrics, group: GroupId, tag: Option<&str>, status: u16, grpc: &[u8]) {
    let reason = if tag.is_some() {
        Reason::Tag
    } else {
        Reason::Split
    };
    let class = StatusClass::of(status);
    tm.request_grpc(0, group, tag, reason, class, 0.01, GrpcStatus::parse(grpc));
}

#[test]
fn h2_groups_count_with_grpc_status_and_h1_groups_without() {
    let m = Metrics::new();
    let tm = m.for_table(&mix_table(", protocol: h2c"), None);
    let text = m.render();
    // The h2c group starts at 0 with grpc_status="none", and has no series without it.
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="canary",grpc_status="none",route="mix",status_class="2xx",upstream_group="g"} 0"#
    ), "{text}");
    assert!(
        !text.contains(r#"dyegate_requests_total{env_tag="canary",route="mix""#),
        "{text}"
    );
    assert!(!text.contains(r#"grpc_status="0""#), "{text}");
    assert!(
        !text.contains(r#"grpc_status="none",route="mix",status_class="2xx",upstream_group="s""#)
    );

    record(&tm, 1, Some("canary"), 200, b"0");
    record(&tm, 1, Some("canary"), 200, b"14");
    record(&tm, 1, Some("canary"), 200, b"14");
    tm.request(
        0,
        1,
        Some("canary"),
        Reason::Tag,
        StatusClass::of(502),
        0.01,
    );
    // An h1 group ignores the status: counted as before.
    record(&tm, 0, None, 200, b"3");
    let text = m.render();
    for (grpc, class, n) in [("0", "2xx", 1), ("14", "2xx", 2), ("none", "5xx", 1)] {
        let series = format!(
            r#"dyegate_requests_total{{env_tag="canary",grpc_status="{grpc}",route="mix",status_class="{class}",upstream_group="g"}} {n}"#
        );
        assert!(text.contains(&series), "{series}\n{text}");
    }
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="none",route="mix",status_class="2xx",upstream_group="s"} 1"#
    ));
    assert!(!text.contains(r#"grpc_status="3""#), "{text}");

    // The group speaks HTTP/1 again: its counts stay, new requests count without the label.
    let tm2 = m.for_table(&mix_table(""), None);
    tm2.request(
        0,
        1,
        Some("canary"),
        Reason::Tag,
        StatusClass::of(200),
        0.01,
    );
    let text = m.render();
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="canary",route="mix",status_class="2xx",upstream_group="g"} 1"#
    ), "{text}");
    assert!(text.contains(
        r#"dyegate_requests_total{env_tag="canary",grpc_status="14",route="mix",status_class="2xx",upstream_group="g"} 2"#
    ));
    assert!(
        !text.contains(r#"grpc_status="none",route="mix",status_class="2xx""#),
        "{text}"
    );
}

#[test]
fn broken_answers_are_counted_as_error_and_fail_the_rollout_window() {
    let m = Metrics::new();
    let t = routes_from_text(
        "r.yaml",
        b"upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\n  g: { targets: [\"127.0.0.2:1\"], protocol: h2c }\nroutes:\n  - { name: shop, dye: { tags: { canary: g } }, split: [{ upstream: s, weight: 1 }] }\n".to_vec(),
        None,
    )
    .expect("valid")
    .table;
    let window = m.rollout_window("shop", "s");
    let tm = m.for_table(&t, None);
    let text = m.render();
    // Every routed series has `error` from 0; dyegate's own answers do not.
    for series in [
        r#"dyegate_requests_total{env_tag="none",route="shop",status_class="error",upstream_group="s"} 0"#,
        r#"dyegate_requests_total{env_tag="canary",grpc_status="none",route="shop",status_class="error",upstream_group="g"} 0"#,
    ] {
        assert!(text.contains(series), "{series}\n{text}");
    }
    assert!(
        !text.contains(r#"route="none",status_class="error""#),
        "{text}"
    );
    assert!(
        !text.contains(r#"status_class="error",upstream_group="none""#),
        "{text}"
    );

    tm.request(0, 0, None, Reason::Split, StatusClass::of(200), 0.01);
    tm.request(0, 0, None, Reason::Split, StatusClass::Error, 0.01);
    tm.request(0, 0, None, Reason::Split, StatusClass::Error, 0.01);
    tm.request_grpc(
        0,
        1,
        Some("canary"),
        Reason::Tag,
        StatusClass::Error,
        0.01,
        GrpcStatus::NONE,
    );
    let text = m.render();
    for series in [
        r#"dyegate_requests_total{env_tag="none",route="shop",status_class="2xx",upstream_group="s"} 1"#,
        r#"dyegate_requests_total{env_tag="none",route="shop",status_class="error",upstream_group="s"} 2"#,
        r#"dyegate_requests_total{env_tag="canary",grpc_status="none",route="shop",status_class="error",upstream_group="g"} 1"#,
    ] {
        assert!(text.contains(series), "{series}\n{text}");
    }
    // The gates see them as errors.
    let now = crate::telemetry::window::now_second();
    let f = window.snapshot(now.saturating_sub(5), now + 1);
    assert_eq!((f.requests, f.errors), (3, 2));
}
