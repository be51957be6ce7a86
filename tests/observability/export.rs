//! Trace context end to end, export: the gateway's spans as real OTLP/gRPC and OTLP/HTTP
//! collectors receive them, sampling, and `traceresponse`.

use dyegate_suite::trace::*;
use dyegate_suite::{Conn, OtlpProtocol, OtlpReceiver, Req};
use http::StatusCode;

/// Sends the five kinds of request the span attributes depend on and checks each span.
async fn spans_reach_the_collector(protocol: OtlpProtocol) {
    let shop = Shop::start();
    let collector = OtlpReceiver::start(protocol, false);
    let gw = shop.gateway(&collector.tracing_yaml("service_name: shop-gateway"));
    let mut conn = Conn::http1(gw.addr()).await;

    let child = conn
        .send(
            Req::get("/api/items?x=1")
                .host("shop.example.com")
                .header("x-case", "child")
                .header("traceparent", &tp("01"))
                .header("user-agent", "tracing-test/1"),
        )
        .await;
    assert_eq!(child.status, StatusCode::OK);
    let tagged = conn
        .send(
            Req::post("/cart")
                .host("shop.example.com:8080")
                .header("x-case", "tagged")
                .header("x-env-tag", "canary"),
        )
        .await;
    assert_eq!(tagged.status, StatusCode::OK);
    let failed = conn
        .send(
            Req::get("/status/503")
                .host("shop.example.com")
                .header("x-case", "503"),
        )
        .await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    let missing = conn.send(Req::get("/").host("nowhere.example.com")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let dead = Req::get("/").host("dead.example.com").send(gw.addr()).await;
    assert_eq!(dead.status, StatusCode::BAD_GATEWAY);

    let spans = collector.wait_for_spans(5, SPANS_TIMEOUT);
    assert_eq!(spans.len(), 5, "one span per request");
    let by_trace = |trace: &str| {
        spans
            .iter()
            .find(|s| s.trace_id_hex() == trace)
            .unwrap_or_else(|| panic!("no span in trace {trace}: {spans:#?}"))
    };
    for s in &spans {
        assert_eq!(s.kind, 2, "SERVER span: {s:#?}");
        assert_eq!(
            s.resource_attr("service.name").as_deref(),
            Some("shop-gateway")
        );
        assert_eq!(s.scope_name, "dyegate");
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano && s.start_time_unix_nano > 0);
        assert_eq!(s.attr("url.scheme").as_deref(), Some("http"));
        assert_eq!(s.attr("client.address").as_deref(), Some("127.0.0.1"));
        assert!(s
            .attr("dyegate.routing_version")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v >= 1));
    }

    // A child of the incoming context; the upstream's parent is the gateway span.
    let up = sent_traceparent(&shop.received("child"), "child");
    let span = by_trace(TRACE);
    assert_eq!(span.parent_span_id_hex(), PARENT);
    assert_eq!(span.span_id_hex(), up.parent);
    assert_eq!(up.flags, "01");
    assert_eq!(span.name, "GET");
    for (key, want) in [
        ("http.request.method", "GET"),
        ("url.path", "/api/items"),
        ("server.address", "shop.example.com"),
        ("network.protocol.version", "1.1"),
        ("user_agent.original", "tracing-test/1"),
        ("http.response.status_code", "200"),
        ("network.peer.address", "127.0.0.1"),
        ("dyegate.route", "shop"),
        ("dyegate.upstream_group", "shop-stable"),
        ("dyegate.decision", "split"),
    ] {
        assert_eq!(span.attr(key).as_deref(), Some(want), "{key} in {span:#?}");
    }
    assert_eq!(
        span.attr("network.peer.port"),
        Some(shop.stable.addr().port().to_string())
    );
    assert_eq!(span.attr("dyegate.env_tag"), None);
    assert_eq!(span.status_code(), 0, "a 200 leaves the status unset");

    // A root span for a request without context, tagged.
    let up = sent_traceparent(&shop.received("tagged"), "tagged");
    let span = by_trace(&up.trace);
    assert_eq!(span.parent_span_id_hex(), "", "a root span");
    assert_eq!(span.span_id_hex(), up.parent);
    assert_eq!(up.flags, "01", "sampled at the default ratio of 1");
    assert_eq!(span.name, "POST");
    assert_eq!(span.attr("server.port").as_deref(), Some("8080"));
    assert_eq!(span.attr("dyegate.decision").as_deref(), Some("tag"));
    assert_eq!(span.attr("dyegate.env_tag").as_deref(), Some("canary"));
    assert_eq!(
        span.attr("dyegate.upstream_group").as_deref(),
        Some("shop-canary")
    );
    assert_eq!(
        span.attr("network.peer.port"),
        Some(shop.canary.addr().port().to_string())
    );

    // A 5xx from the upstream is an error.
    let up = sent_traceparent(&shop.received("503"), "503");
    let span = by_trace(&up.trace);
    assert_eq!(
        span.attr("http.response.status_code").as_deref(),
        Some("503")
    );
    assert_eq!(span.attr("error.type").as_deref(), Some("503"));
    assert_eq!(span.status_code(), 2);

    // No route: the gateway answers 404 itself, which is not a server error.
    let span = spans
        .iter()
        .find(|s| s.attr("dyegate.decision").as_deref() == Some("no_route"))
        .expect("the 404's span");
    assert_eq!(
        span.attr("http.response.status_code").as_deref(),
        Some("404")
    );
    assert_eq!(span.attr("dyegate.route"), None);
    assert_eq!(span.status_code(), 0);

    // A refused connect: 502, error status, the dead target as peer, an event per attempt.
    let span = spans
        .iter()
        .find(|s| s.attr("dyegate.route").as_deref() == Some("dead"))
        .expect("the 502's span");
    assert_eq!(
        span.attr("http.response.status_code").as_deref(),
        Some("502")
    );
    assert_eq!(span.attr("error.type").as_deref(), Some("ConnectRefused"));
    assert_eq!(span.status_code(), 2);
    assert_eq!(
        span.attr("network.peer.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(span.event_names(), vec!["connect_failed"]);
}

#[tokio::test]
async fn spans_reach_an_otlp_grpc_collector() {
    spans_reach_the_collector(OtlpProtocol::Grpc).await;
}

#[tokio::test]
async fn spans_reach_an_otlp_http_collector() {
    spans_reach_the_collector(OtlpProtocol::Http).await;
}

#[tokio::test]
async fn sampling_follows_the_parent_and_the_root_ratio() {
    let shop = Shop::start();
    let collector = OtlpReceiver::grpc();
    let gw = shop.gateway(&collector.tracing_yaml("sample_ratio: 0"));
    let mut conn = Conn::http1(gw.addr()).await;
    let other_trace = "0af7651916cd43dd8448eb211c80319c";
    for (id, traceparent) in [
        ("root", None),
        ("unsampled", Some(format!("00-{other_trace}-{PARENT}-00"))),
        ("sampled", Some(tp("01"))),
    ] {
        let mut req = Req::get("/").host("shop.example.com").header("x-case", id);
        if let Some(tp) = &traceparent {
            req = req.header("traceparent", tp);
        }
        assert_eq!(conn.send(req).await.status, StatusCode::OK);
    }
    assert_eq!(sent_traceparent(&shop.received("root"), "root").flags, "00");
    assert_eq!(
        sent_traceparent(&shop.received("unsampled"), "unsampled").flags,
        "00"
    );
    assert_eq!(
        sent_traceparent(&shop.received("sampled"), "sampled").flags,
        "01"
    );
    // Spans leave in order: once the sampled one is in, the others would be too.
    let spans = collector.wait_for_spans(1, SPANS_TIMEOUT);
    assert_eq!(
        spans.len(),
        1,
        "only the sampled parent's child is recorded: {spans:#?}"
    );
    assert_eq!(spans[0].trace_id_hex(), TRACE);
}

#[tokio::test]
async fn traceresponse_names_the_trace_and_the_gateway_span() {
    let shop = Shop::start();
    let collector = OtlpReceiver::grpc();
    let gw = shop.gateway(&format!(
        "{}traceresponse: true\n",
        collector.tracing_yaml("")
    ));
    let resp = Req::get("/")
        .host("shop.example.com")
        .header("x-case", "tr")
        .header("traceparent", &tp("01"))
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    let up = sent_traceparent(&shop.received("tr"), "tr");
    assert_eq!(
        resp.header("traceresponse"),
        Some(format!("00-{TRACE}-{}-01", up.parent).as_str())
    );
    let spans = collector.wait_for_spans(1, SPANS_TIMEOUT);
    assert_eq!(spans[0].span_id_hex(), up.parent);
}

#[tokio::test]
async fn the_exported_span_carries_the_incoming_tracestate() {
    let shop = Shop::start();
    let collector = OtlpReceiver::grpc();
    let gw = shop.gateway(&collector.tracing_yaml(""));
    let mut conn = Conn::http1(gw.addr()).await;
    let req = Req::get("/")
        .host("shop.example.com")
        .header("x-case", "ts")
        .header("traceparent", &tp("01"))
        .header("tracestate", "foo=1,bar=2")
        .header("tracestate", "baz=3");
    assert_eq!(conn.send(req).await.status, StatusCode::OK);
    let spans = collector.wait_for_spans(1, SPANS_TIMEOUT);
    assert_eq!(spans[0].span.trace_state, "foo=1,bar=2,baz=3", "{spans:#?}");
    // The upstream got it unchanged, as before.
    assert_eq!(
        shop.received("ts").header_all("tracestate"),
        ["foo=1,bar=2", "baz=3"]
    );
}

#[tokio::test]
async fn traceresponse_is_on_the_answers_the_gateway_writes_itself() {
    let shop = Shop::start();
    let collector = OtlpReceiver::grpc();
    let gw = shop.gateway(&format!(
        "{}traceresponse: true\n",
        collector.tracing_yaml("")
    ));
    // 404 (no route), 502 (no target reachable): the request's trace id and the gateway span.
    for (host, status) in [
        ("nowhere.example.com", StatusCode::NOT_FOUND),
        ("dead.example.com", StatusCode::BAD_GATEWAY),
    ] {
        let resp = Req::get("/")
            .host(host)
            .header("traceparent", &tp("01"))
            .send(gw.addr())
            .await;
        assert_eq!(resp.status, status, "{host}");
        let value = resp
            .header("traceresponse")
            .unwrap_or_else(|| panic!("{host}: no traceresponse"))
            .to_string();
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!(
            (parts.len(), parts[0], parts[1], parts[3]),
            (4, "00", TRACE, "01"),
            "{host}: {value}"
        );
        assert!(
            parts[2].len() == 16 && parts[2] != PARENT && parts[2] != "0000000000000000",
            "{host}: the gateway span's id, not the client's: {value}"
        );
    }
    // The spans of both failed requests, under the ids the client was told.
    let spans = collector.wait_for_spans(2, SPANS_TIMEOUT);
    assert!(
        spans.iter().all(|s| s.trace_id_hex() == TRACE),
        "{spans:#?}"
    );
}
