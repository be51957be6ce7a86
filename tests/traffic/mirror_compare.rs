//! Comparing mirrored answers (issue 31), end to end: a shadow that answers 500 on `/checkout`
//! only is a `status_mismatch` on those paths only, listed in `GET /mirrors` and `dyegate
//! mirrors`; a body one byte off is a `body_mismatch`; a header that differs is a
//! `body_mismatch` naming it, one in `ignore_headers` is not. Two scripted upstreams that
//! answer alike except where told. A real answer that breaks off is not compared
//! (`primary_aborted`).

use dyegate_suite::upstream::{Fault, FaultyUpstream, Script, ScriptedUpstream};
use dyegate_suite::{Conn, GatewayConfig, Req};
use http::StatusCode;
use serde_json::Value;

use super::mirror::{mirror_total, routes, wait_counted};

#[tokio::test]
async fn differences_are_counted_by_kind_and_listed_without_values() {
    let stable = ScriptedUpstream::start("stable", Script::default());
    let shadow = ScriptedUpstream::start(
        "shadow",
        Script {
            fail: Some("/checkout"),
            flip_byte: Some("/flip"),
            other_version: Some("/v2"),
        },
    );
    // `x-request-id` differs on every answer: ignored, it must not make a mismatch.
    let mirror = "{ upstream: shadow, percent: 100, max_body_bytes: 4096, compare: { status: true, body: hash, ignore_headers: [x-request-id] } }";
    let gw = GatewayConfig::new(&routes(&stable.target(), &shadow.target(), mirror)).start();
    let mut conn = Conn::http1(gw.addr()).await;
    let paths = (0..20).map(|i| format!("/ok/{i}?size={}", 1 + i * 500));
    let paths = paths
        .chain((0..5).map(|i| format!("/checkout/{i}")))
        .chain((0..5).map(|i| format!("/flip/{i}?size=100")))
        .chain((0..5).map(|i| format!("/v2/{i}")))
        // Past max_body_bytes: compared by length only (the flipped byte goes unseen).
        .chain((0..3).map(|i| format!("/flip/big/{i}?size=5000")));
    for p in paths {
        let resp = conn.send(Req::get(&p)).await;
        let expected = StatusCode::OK;
        assert_eq!(
            resp.status, expected,
            "{p}: the client gets the real answer"
        );
    }
    let outcomes = ["match", "status_mismatch", "body_mismatch", "shadow_error"];
    assert_eq!(wait_counted(&gw, &outcomes, 38).await, Ok(()));
    assert_eq!(mirror_total(&gw, "match").await, 23);
    assert_eq!(mirror_total(&gw, "status_mismatch").await, 5);
    assert_eq!(mirror_total(&gw, "body_mismatch").await, 10);
    assert_eq!(shadow.marked_count(), 38);
    assert_eq!(stable.marked_count(), 0);

    let answer = Req::get("/mirrors/shop").send(gw.admin_addr()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let json = answer.json();
    let entry = &json["mirrors"][0];
    assert_eq!(
        (&entry["route"], &entry["group"]),
        (&Value::from("shop"), &Value::from("shadow"))
    );
    assert_eq!(entry["counts"]["match"], 23);
    let listed = entry["mismatches"].as_array().expect("mismatches");
    assert_eq!(listed.len(), 15);
    for m in listed {
        let path = m["path"].as_str().expect("path");
        let headers = m["headers"].as_array().expect("headers");
        match m["outcome"].as_str() {
            Some("status_mismatch") => {
                assert!(path.starts_with("/checkout/"), "{m}");
                assert_eq!(
                    (
                        m["status"]["primary"].as_u64(),
                        m["status"]["shadow"].as_u64()
                    ),
                    (Some(200), Some(500))
                );
            }
            Some("body_mismatch") if path.starts_with("/flip/") => {
                assert!(headers.is_empty(), "{m}");
                assert_eq!(m["body_bytes"]["primary"], 100);
                assert_eq!(m["body_bytes"]["shadow"], 100);
            }
            Some("body_mismatch") => {
                assert!(path.starts_with("/v2/"), "{m}");
                assert_eq!(headers, &vec![Value::from("x-version")]);
            }
            other => panic!("{other:?}: {m}"),
        }
        assert_eq!(m["method"], "GET");
        assert!(m["trace_id"].as_str().is_some_and(|t| t.len() == 32), "{m}");
        assert!(
            m["latency_ms"]["primary"].as_f64().is_some()
                && m["latency_ms"]["shadow"].as_f64().is_some()
        );
    }
    // Never a header value, never a body.
    let text = json.to_string();
    assert!(
        !text.contains("stable-") && !text.contains("answer to"),
        "{text}"
    );
    let metrics = Req::get("/metrics").send(gw.admin_addr()).await.text();
    let primary =
        "dyegate_mirror_latency_seconds_count{group=\"shadow\",route=\"shop\",side=\"primary\"} 38";
    assert!(metrics.lines().any(|l| l == primary), "{metrics}");

    let cli = gw.config().cli(&["mirrors", "shop", "-o", "table"]);
    assert_eq!(cli.code, Some(0), "{cli}");
    assert_eq!(
        cli.stdout.lines().next(),
        Some("shop -> shadow: 23 match, 5 status_mismatch, 10 body_mismatch"),
        "{cli}"
    );
    assert!(
        cli.stdout.contains("status_mismatch  GET     /checkout/4"),
        "{cli}"
    );
    let unknown = gw.config().cli(&["mirrors", "cart"]);
    assert_eq!(unknown.code, Some(1), "{unknown}");
}

#[tokio::test]
async fn a_real_answer_that_breaks_off_is_not_compared() {
    // The real upstream sends its head and 10 bytes of 1,000, then stalls: `read_ms` breaks
    // the answer off; the shadow's whole answer has nothing to be compared with.
    let stable = FaultyUpstream::start("stable", Fault::StallBody);
    let shadow = ScriptedUpstream::start("shadow", Script::default());
    let mirror = "{ upstream: shadow, percent: 100, compare: { body: hash } }";
    let text = routes(&stable.target(), &shadow.target(), mirror).replace(
        "    split: [",
        "    timeouts: { read_ms: 300 }\n    split: [",
    );
    let gw = GatewayConfig::new(&text).start();
    for i in 0..3 {
        let mut conn = Conn::http1(gw.addr()).await;
        let broken = conn.try_send(Req::get(&format!("/stall/{i}"))).await;
        assert!(
            broken.is_err(),
            "request {i}: {:?}",
            broken.map(|r| r.status)
        );
    }
    assert_eq!(wait_counted(&gw, &["primary_aborted"], 3).await, Ok(()));
    assert_eq!(shadow.marked_count(), 3);
    for o in ["match", "status_mismatch", "body_mismatch"] {
        assert_eq!(mirror_total(&gw, o).await, 0, "{o}");
    }
}

#[tokio::test]
async fn what_the_baseline_shows_too_is_noise_not_a_mismatch() {
    let stable = ScriptedUpstream::start("stable", Script::default());
    // The stable version too answers `x-version: 2` on /v2 (say, a header that changes by
    // itself); only the shadow flips a byte on /flip.
    let base = ScriptedUpstream::start(
        "base",
        Script {
            other_version: Some("/v2"),
            ..Script::default()
        },
    );
    let shadow = ScriptedUpstream::start(
        "shadow",
        Script {
            flip_byte: Some("/flip"),
            other_version: Some("/v2"),
            ..Script::default()
        },
    );
    let mirror = "{ upstream: shadow, percent: 100, compare: { ignore_headers: [x-request-id], baseline: base } }";
    let text = routes(&stable.target(), &shadow.target(), mirror).replace(
        "routes:\n",
        &format!("  base: {{ targets: [\"{}\"] }}\nroutes:\n", base.target()),
    );
    let gw = GatewayConfig::new(&text).start();
    let mut conn = Conn::http1(gw.addr()).await;
    let paths = (0..10).map(|i| format!("/ok/{i}"));
    let paths = paths
        .chain((0..5).map(|i| format!("/v2/{i}")))
        .chain((0..5).map(|i| format!("/flip/{i}")));
    for p in paths {
        assert_eq!(conn.send(Req::get(&p)).await.status, StatusCode::OK, "{p}");
    }
    let outcomes = ["match", "status_mismatch", "body_mismatch", "shadow_error"];
    assert_eq!(wait_counted(&gw, &outcomes, 20).await, Ok(()));
    assert_eq!(mirror_total(&gw, "match").await, 15);
    assert_eq!(mirror_total(&gw, "body_mismatch").await, 5);
    assert_eq!(base.marked_count(), 20);
    let json = Req::get("/mirrors/shop").send(gw.admin_addr()).await.json();
    assert_eq!(json["mirrors"][0]["noise"], 5, "{json}");
    let listed = json["mirrors"][0]["mismatches"].as_array().expect("list");
    assert!(
        listed
            .iter()
            .all(|m| m["path"].as_str().is_some_and(|p| p.starts_with("/flip/"))),
        "{json}"
    );
}
