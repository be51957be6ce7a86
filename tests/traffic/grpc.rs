//! gRPC through dyegate end to end, HTTP/2 on both legs: clients speak h2c (prior knowledge)
//! to the gateway, the gateway speaks h2c to `protocol: h2c` upstreams. A unary call reaches a
//! real tonic server (the OTLP trace collector) and `x-env-tag: canary` sends it to the canary;
//! a server-streaming call gets every message and its trailers intact, and its server sees the
//! dye tag and trace context as metadata; an idle stream reads with `stream_idle_ms`, not
//! `read_ms`, and is closed once idle that long; every call is counted with its `grpc_status` and logged with it.

use std::path::Path;
use std::time::{Duration, Instant};

use dyegate_suite::grpc::{grpc_call, GrpcStreamServer, StreamScript};
use dyegate_suite::metrics::{Series, REQUESTS};
use dyegate_suite::rollout::judged;
use dyegate_suite::{poll_until, wait_until, GatewayConfig, OtlpReceiver};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const TIMEOUT: Duration = Duration::from_secs(10);
/// A client's W3C trace context (the example of the spec).
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An export of one span called `name`.
fn export(name: &str) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource::default()),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: name.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Groups `stable` and `canary` (h2c), one route with tag `canary` and everything else to
/// stable, plus `extra` route fields.
fn routes(stable: &str, canary: &str, extra: &str) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{stable}\"], protocol: h2c }}\n  canary: {{ targets: [\"{canary}\"], protocol: h2c }}\nroutes:\n  - name: grpc\n    dye: {{ tags: {{ canary: canary }} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n{extra}"
    )
}

fn requests_total(group: &str, tag: &str, grpc: &str) -> Series {
    Series::new(
        REQUESTS,
        &[
            ("route", "grpc"),
            ("upstream_group", group),
            ("env_tag", tag),
            ("status_class", "2xx"),
            ("grpc_status", grpc),
        ],
    )
}

fn log_lines(path: &Path, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let held = wait_until(TIMEOUT, || {
        got = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        got.len() >= n
    });
    assert!(held, "{} lines in {}, want {n}", got.len(), path.display());
    got
}

#[tokio::test]
async fn unary_calls_reach_the_tonic_server_and_the_tag_picks_the_canary() {
    let (stable, canary) = (OtlpReceiver::grpc(), OtlpReceiver::grpc());
    let gw = GatewayConfig::new(&routes(
        &stable.addr().to_string(),
        &canary.addr().to_string(),
        "",
    ))
    .with_gateway_extra("access_log: { path: access.log }\n")
    .start();

    let reply = grpc_call(gw.addr(), EXPORT, &[], &export("untagged")).await;
    assert_eq!(reply.error, None, "{reply:?}\n{}", gw.logs());
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.grpc_status(),
        Some("0"),
        "trailers: {:?}",
        reply.trailers
    );
    assert!(reply.trailers.is_some(), "grpc-status came in trailers");
    assert_eq!(reply.messages.len(), 1);
    ExportTraceServiceResponse::decode(reply.messages[0].clone()).expect("an export response");

    let reply = grpc_call(
        gw.addr(),
        EXPORT,
        &[("x-env-tag", "canary")],
        &export("tagged"),
    )
    .await;
    assert_eq!(reply.grpc_status(), Some("0"), "{reply:?}");

    let names =
        |r: &OtlpReceiver| -> Vec<String> { r.spans().iter().map(|s| s.name.clone()).collect() };
    assert!(wait_until(TIMEOUT, || stable.spans().len() == 1
        && canary.spans().len() == 1));
    assert_eq!(names(&stable), vec!["untagged"]);
    assert_eq!(names(&canary), vec!["tagged"]);

    let m = gw
        .wait_for_metrics(TIMEOUT, "both calls counted with grpc_status 0", |s| {
            s.at(&requests_total("stable", "none", "0")) == Some(1.0)
                && s.at(&requests_total("canary", "canary", "0")) == Some(1.0)
        })
        .await;
    // A group that speaks h2c reads 0 for a call without a status from the start.
    assert_eq!(m.at(&requests_total("canary", "none", "none")), Some(0.0));
    let lines = log_lines(&gw.config().path("access.log"), 2);
    for line in &lines {
        assert_eq!(line["grpc_status"], "0", "{line}");
        assert_eq!(line["path"], EXPORT, "{line}");
    }
    assert_eq!(lines[1]["tag"], "canary", "{:?}", lines[1]);
}

#[tokio::test]
async fn a_server_stream_arrives_whole_with_trailers_and_the_metadata_reaches_the_server() {
    let script = StreamScript {
        messages: 3,
        pause: Duration::from_millis(100),
        status: 14,
        message: "back soon".into(),
        reset: None,
    };
    let stable = GrpcStreamServer::start("stable", script.clone());
    let canary = GrpcStreamServer::start("canary", script);
    let gw = GatewayConfig::new(&routes(&stable.target(), &canary.target(), "")).start();

    let reply = grpc_call(
        gw.addr(),
        "/test.Feed/Watch",
        &[("x-env-tag", "canary"), ("traceparent", TRACEPARENT)],
        b"watch",
    )
    .await;
    assert_eq!(reply.error, None, "{reply:?}\n{}", gw.logs());
    assert_eq!(reply.texts(), vec!["canary 0", "canary 1", "canary 2"]);
    let trailers = reply.trailers.as_ref().expect("trailers");
    assert_eq!(trailers["grpc-status"], "14");
    assert_eq!(trailers["grpc-message"], "back soon");
    assert_eq!(reply.headers["content-type"], "application/grpc");
    // Streamed, not buffered: the last message came well after the first.
    assert!(
        reply.arrivals[2] >= reply.arrivals[0] + Duration::from_millis(150),
        "arrivals {:?}",
        reply.arrivals
    );

    assert_eq!(stable.requests().len(), 0);
    let seen = canary.requests();
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!(call.version, "HTTP/2.0");
    assert_eq!(call.path, "/test.Feed/Watch");
    assert_eq!(call.header("x-env-tag"), Some("canary"));
    assert_eq!(call.header("content-type"), Some("application/grpc"));
    assert_eq!(call.header("te"), Some("trailers"));
    // The gateway's span is the upstream's parent, in the client's trace; the tag in baggage.
    let traceparent = call.header("traceparent").expect("traceparent");
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
            && !traceparent.contains("00f067aa0ba902b7"),
        "{traceparent}"
    );
    assert_eq!(call.header("baggage"), Some("env-tag=canary"));

    gw.wait_for_metrics(TIMEOUT, "the call counted with grpc_status 14", |s| {
        s.at(&requests_total("canary", "canary", "14")) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn a_trailers_only_error_is_counted_with_its_status() {
    let script = StreamScript {
        messages: 0,
        pause: Duration::ZERO,
        status: 5,
        message: "no such feed".into(),
        reset: None,
    };
    let stable = GrpcStreamServer::start("stable", script.clone());
    let canary = GrpcStreamServer::start("canary", script);
    let gw = GatewayConfig::new(&routes(&stable.target(), &canary.target(), "")).start();

    let reply = grpc_call(gw.addr(), "/test.Feed/Watch", &[], b"watch").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.grpc_status(), Some("5"), "{reply:?}");
    assert_eq!(reply.grpc_message(), Some("no such feed"));
    assert!(reply.messages.is_empty());
    gw.wait_for_metrics(TIMEOUT, "the call counted with grpc_status 5", |s| {
        s.at(&requests_total("stable", "none", "5")) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn an_idle_stream_outlives_read_ms_and_is_closed_after_stream_idle_ms() {
    // Two messages 1.5 s apart: idle longer than the 400 ms `read_ms` of both routes, and than
    // the 400 ms `stream_idle_ms` of route `cut` (route `idle-ok` keeps the default, 5 min).
    let script = StreamScript {
        messages: 2,
        pause: Duration::from_millis(1500),
        status: 0,
        message: String::new(),
        reset: None,
    };
    let stable = GrpcStreamServer::start("stable", script.clone());
    let canary = GrpcStreamServer::start("canary", script);
    let extra = "  - name: idle-ok\n    match: { path_prefix: /test.Idle/ }\n    timeouts: { read_ms: 400 }\n    split: [{ upstream: stable, weight: 1 }]\n  - name: cut\n    match: { path_prefix: /test.Cut/ }\n    timeouts: { read_ms: 400, stream_idle_ms: 400 }\n    split: [{ upstream: stable, weight: 1 }]\n";
    // The catch-all route first would take both: put the specific ones first.
    let yaml = routes(&stable.target(), &canary.target(), "");
    let (head, first_route) = yaml.split_once("routes:\n").expect("routes section");
    let gw = GatewayConfig::new(&format!("{head}routes:\n{extra}{first_route}")).start();

    let (ok, cut) = tokio::join!(
        grpc_call(gw.addr(), "/test.Idle/Watch", &[], b"watch"),
        grpc_call(gw.addr(), "/test.Cut/Watch", &[], b"watch"),
    );
    assert_eq!(ok.error, None, "{ok:?}\n{}", gw.logs());
    assert_eq!(ok.texts(), vec!["stable 0", "stable 1"]);
    assert_eq!(ok.grpc_status(), Some("0"));
    assert!(
        ok.took >= Duration::from_millis(1500),
        "the idle stream ran its course: {:?}",
        ok.took
    );

    assert_eq!(cut.texts(), vec!["stable 0"], "{cut:?}");
    assert_eq!(
        cut.grpc_status(),
        None,
        "no trailers on a cut stream: {cut:?}"
    );
    assert!(cut.error.is_some(), "the stream breaks off: {cut:?}");
    assert!(
        cut.took < Duration::from_millis(1500),
        "cut before the second message: {:?}",
        cut.took
    );
    // Closed idle by the gateway's own policy: a normal end (no `grpc-status`, but neither an
    // error nor the target's failure), counted as a `stream_idle` timeout.
    let class = |class| {
        Series::new(
            REQUESTS,
            &[
                ("route", "cut"),
                ("upstream_group", "stable"),
                ("env_tag", "none"),
                ("status_class", class),
                ("grpc_status", "none"),
            ],
        )
    };
    let timeouts = |kind, route| {
        Series::new(
            "dyegate_timeouts_total",
            &[("kind", kind), ("route", route)],
        )
    };
    gw.wait_for_metrics(TIMEOUT, "the cut stream counted as an idle close", |s| {
        s.at(&class("2xx")) == Some(1.0)
            && s.at(&class("error")).unwrap_or(0.0) == 0.0
            && s.at(&timeouts("stream_idle", "cut")) == Some(1.0)
            && s.at(&timeouts("read", "cut")).unwrap_or(0.0) == 0.0
            && s.at(&timeouts("stream_idle", "idle-ok")).unwrap_or(0.0) == 0.0
    })
    .await;
}

/// Groups `stable` and `canary` (h2c) of route `grpc` under a rollout from 0% to 50% and 100%,
/// gated on a 20% error rate over one second (at least 5 calls).
fn rollout_routes(stable: &str, canary: &str) -> String {
    routes(stable, canary, "").replace(
        "    split: [{ upstream: stable, weight: 1 }]\n",
        "    split: [{ upstream: stable, weight: 100 }, { upstream: canary, weight: 0 }]\n    rollout: { canary: canary, steps: [50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 5, max_error_rate: 0.2 } }\n",
    )
}

/// A canary whose calls end in the trailers-only `status` (an HTTP 200 answer).
fn failing(status: u32) -> StreamScript {
    StreamScript {
        messages: 0,
        pause: Duration::ZERO,
        status,
        message: "canary broken".into(),
        reset: None,
    }
}

/// A canary whose calls fail with `UNAVAILABLE` (HTTP 200, the failure in `grpc-status`) fails
/// its rollout's error-rate gate as a canary answering 5xx does: the rollout takes its share
/// back to 0. Calls failing with a caller's status (`NOT_FOUND`) are not the canary's errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_errors_count_against_the_rollout_gates() {
    let ok = StreamScript {
        messages: 1,
        pause: Duration::ZERO,
        ..StreamScript::default()
    };
    let stable = GrpcStreamServer::start("stable", ok);

    // NOT_FOUND (5): the caller's mistake; 30 of them on the canary, the rollout stays at step 1.
    let canary = GrpcStreamServer::start("canary", failing(5));
    let gw = GatewayConfig::new(&rollout_routes(&stable.target(), &canary.target())).start();
    let mut canary_calls = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && canary_calls < 30 {
        let reply = grpc_call(gw.addr(), "/test.Feed/Watch", &[], b"watch").await;
        if reply.grpc_status() == Some("5") {
            canary_calls += 1;
        }
        // time is tested: calls spread over time as traffic is, for the rollout's 1 s windows.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        canary_calls >= 30,
        "the canary got {canary_calls} calls at step 1"
    );
    // Past a judgement of a window that held them.
    let r = judged(&gw, "grpc", 2).await;
    assert_eq!(r["step"], 1, "client errors are not the canary's: {r:#}");
    assert_ne!(r["state"], "failed", "{r:#}");
    drop(gw);

    // UNAVAILABLE (14): the canary's failure; the gate breaks and the share goes back to 0.
    let canary = GrpcStreamServer::start("canary", failing(14));
    let gw = GatewayConfig::new(&rollout_routes(&stable.target(), &canary.target())).start();
    let failing_calls = || async {
        let _ = grpc_call(gw.addr(), "/test.Feed/Watch", &[], b"watch").await;
        gw.admin_get("/rollouts/grpc").await
    };
    let failed = poll_until(Duration::from_secs(20), failing_calls, |r| {
        r["state"] == "failed"
    });
    let r = failed.await.unwrap_or_else(|r| r);
    assert_eq!(r["state"], "failed", "{r:#}\n{}", gw.logs());
    assert_eq!(r["table_canary_share"], 0.0, "{r:#}");
    let history = r["history"].to_string();
    assert!(
        history.contains("error_rate"),
        "failed on the error rate: {r:#}"
    );
}
