//! Trace context end to end: what the upstream receives for every kind of `traceparent`,
//! `tracestate` and `baggage` (valid, each kind of invalid, future version, absent, oversize),
//! the gateway's spans as real OTLP/gRPC and OTLP/HTTP collectors receive them, and requests
//! that do not care whether the collector is down or stuck.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dyegate_suite::{
    free_addr, gateway::GatewayConfig, upstream_groups, Conn, Dyegate, OtlpProtocol, OtlpReceiver,
    RecordedRequest, Req, Upstream,
};
use http::StatusCode;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
/// How long spans may take to reach a collector (batches linger 200 ms; debug build, busy box).
const SPANS_TIMEOUT: Duration = Duration::from_secs(10);

/// A stable and a canary group; `shop` splits all untagged traffic to stable, `promo` sends it to
/// canary (so the split sets the tag), `strict` only trusts tags from 10.0.0.0/8 (the tests send
/// from 127.0.0.1), `dead` has a target nobody listens on.
struct Shop {
    stable: Upstream,
    canary: Upstream,
}

impl Shop {
    fn start() -> Self {
        Shop {
            stable: Upstream::start("shop-stable"),
            canary: Upstream::start("shop-canary"),
        }
    }

    fn routes(&self) -> String {
        format!(
            "{}  dead: {{ targets: [\"{}\"] }}\n\
routes:
  - name: shop
    match: {{ host: shop.example.com }}
    dye: {{ tags: {{ canary: shop-canary }} }}
    split: [ {{ upstream: shop-stable, weight: 1 }} ]
  - name: promo
    match: {{ host: promo.example.com }}
    dye: {{ tags: {{ canary: shop-canary }} }}
    split: [ {{ upstream: shop-canary, weight: 1 }} ]
  - name: strict
    match: {{ host: strict.example.com }}
    dye: {{ tags: {{ canary: shop-canary }}, trusted_sources: [\"10.0.0.0/8\"] }}
    split: [ {{ upstream: shop-stable, weight: 1 }} ]
  - name: dead
    match: {{ host: dead.example.com }}
    split: [ {{ upstream: dead, weight: 1 }} ]
",
            upstream_groups(&[("shop-stable", &self.stable), ("shop-canary", &self.canary)]),
            free_addr()
        )
    }

    fn gateway(&self, gateway_extra: &str) -> Dyegate {
        GatewayConfig::new(&self.routes())
            .gateway_extra(gateway_extra)
            .start()
    }

    /// The request an upstream received with header `x-case: id`.
    fn received(&self, id: &str) -> RecordedRequest {
        let all: Vec<RecordedRequest> = self
            .stable
            .requests()
            .into_iter()
            .chain(self.canary.requests())
            .filter(|r| r.header("x-case") == Some(id))
            .collect();
        assert_eq!(
            all.len(),
            1,
            "case {id}: expected one upstream request, got {all:?}"
        );
        all.into_iter().next().unwrap_or_else(|| unreachable!())
    }
}

/// A version-00 `traceparent` as the upstream received it.
#[derive(Debug)]
struct Sent {
    trace: String,
    parent: String,
    flags: String,
}

fn sent_traceparent(req: &RecordedRequest, case: &str) -> Sent {
    let all = req.header_all("traceparent");
    assert_eq!(
        all.len(),
        1,
        "case {case}: one traceparent upstream, got {all:?}"
    );
    let parts: Vec<&str> = all[0].split('-').collect();
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(
        parts.len() == 4
            && parts[0] == "00"
            && lower_hex(parts[1], 32)
            && lower_hex(parts[2], 16)
            && lower_hex(parts[3], 2)
            && parts[1] != "0".repeat(32)
            && parts[2] != "0".repeat(16),
        "case {case}: upstream traceparent {:?} is not a valid version 00",
        all[0]
    );
    Sent {
        trace: parts[1].to_string(),
        parent: parts[2].to_string(),
        flags: parts[3].to_string(),
    }
}

/// Which trace the upstream request must be in.
#[derive(Debug, Clone, Copy)]
enum Trace {
    /// The incoming trace id, continued with the gateway span as parent.
    Continued,
    /// A new trace id (the incoming `traceparent` was absent or invalid).
    Restarted,
}

struct Case {
    name: &'static str,
    host: &'static str,
    headers: Vec<(&'static str, String)>,
    trace: Trace,
    flags: &'static str,
    /// Every `tracestate` value the upstream must see, in order.
    tracestate: Vec<String>,
    /// Every `baggage` value the upstream must see, in order.
    baggage: Vec<String>,
}

fn tp(flags: &str) -> String {
    format!("00-{TRACE}-{PARENT}-{flags}")
}

fn case(
    name: &'static str,
    headers: &[(&'static str, &str)],
    trace: Trace,
    flags: &'static str,
) -> Case {
    Case {
        name,
        host: "shop.example.com",
        headers: headers.iter().map(|(n, v)| (*n, v.to_string())).collect(),
        trace,
        flags,
        tracestate: Vec::new(),
        baggage: Vec::new(),
    }
}

impl Case {
    fn host(mut self, host: &'static str) -> Self {
        self.host = host;
        self
    }
    fn tracestate(mut self, values: &[&str]) -> Self {
        self.tracestate = values.iter().map(|v| v.to_string()).collect();
        self
    }
    fn baggage(mut self, values: &[&str]) -> Self {
        self.baggage = values.iter().map(|v| v.to_string()).collect();
        self
    }
}

fn members(prefix: &str, range: std::ops::RangeInclusive<usize>) -> String {
    range
        .map(|i| format!("{prefix}{i:02}={i:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn table() -> Vec<Case> {
    use Trace::*;
    let ts32 = members("bar", 1..=32);
    let big = |c: char| format!("{c}{}={}", c, c.to_string().repeat(3000));
    let oversize = format!("{},{},{}", big('a'), big('b'), big('c'));
    let many = (0..200)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let many_kept = std::iter::once("env-tag=canary".to_string())
        .chain((0..179).map(|i| format!("k{i}=v")))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        // traceparent
        case("absent", &[], Restarted, "00"),
        case(
            "valid, sampled",
            &[("traceparent", &tp("01"))],
            Continued,
            "01",
        ),
        case(
            "valid, not sampled",
            &[("traceparent", &tp("00"))],
            Continued,
            "00",
        ),
        case(
            "unknown flag bits are zeroed",
            &[("traceparent", &tp("09"))],
            Continued,
            "01",
        ),
        case(
            "surrounding whitespace",
            &[("traceparent", &format!("  {}\t", tp("01")))],
            Continued,
            "01",
        ),
        case(
            "future version, same length",
            &[("traceparent", &format!("cc-{TRACE}-{PARENT}-01"))],
            Continued,
            "01",
        ),
        case(
            "future version, extra fields",
            &[
                (
                    "traceparent",
                    &format!("cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"),
                ),
                ("tracestate", "foo=1"),
            ],
            Continued,
            "01",
        )
        .tracestate(&["foo=1"]),
        case(
            "future version, no dash after flags",
            &[
                (
                    "traceparent",
                    &format!("cc-{TRACE}-{PARENT}-01.what-the-future-will-not-be-like"),
                ),
                ("tracestate", "foo=1"),
            ],
            Restarted,
            "00",
        ),
        case(
            "version ff is forbidden",
            &[
                ("traceparent", &format!("ff-{TRACE}-{PARENT}-01")),
                ("tracestate", "foo=1"),
            ],
            Restarted,
            "00",
        ),
        case(
            "version not hex",
            &[("traceparent", &format!("0.-{TRACE}-{PARENT}-01"))],
            Restarted,
            "00",
        ),
        case(
            "version 00 with trailing data",
            &[("traceparent", &format!("{}-extra", tp("01")))],
            Restarted,
            "00",
        ),
        case(
            "uppercase trace id",
            &[(
                "traceparent",
                &format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
            )],
            Restarted,
            "00",
        ),
        case(
            "trace id all zeros",
            &[("traceparent", &format!("00-{}-{PARENT}-01", "0".repeat(32)))],
            Restarted,
            "00",
        ),
        case(
            "parent id all zeros",
            &[("traceparent", &format!("00-{TRACE}-{}-01", "0".repeat(16)))],
            Restarted,
            "00",
        ),
        case(
            "trace id too short",
            &[("traceparent", &format!("00-{}-{PARENT}-01", &TRACE[1..]))],
            Restarted,
            "00",
        ),
        case(
            "parent id too long",
            &[("traceparent", &format!("00-{TRACE}-{PARENT}0-01"))],
            Restarted,
            "00",
        ),
        case(
            "flags not hex",
            &[("traceparent", &format!("00-{TRACE}-{PARENT}-0x"))],
            Restarted,
            "00",
        ),
        case(
            "two traceparent headers",
            &[("traceparent", &tp("01")), ("traceparent", &tp("01"))],
            Restarted,
            "00",
        ),
        // tracestate
        case(
            "tracestate forwarded",
            &[
                ("traceparent", &tp("01")),
                ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
            ],
            Continued,
            "01",
        )
        .tracestate(&["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]),
        case(
            "tracestate split over two headers",
            &[
                ("traceparent", &tp("01")),
                ("tracestate", "foo=1,bar=2"),
                ("tracestate", "baz=3"),
            ],
            Continued,
            "01",
        )
        .tracestate(&["foo=1,bar=2", "baz=3"]),
        case(
            "tracestate without traceparent",
            &[("tracestate", "foo=1")],
            Restarted,
            "00",
        ),
        case(
            "tracestate with 32 members",
            &[("traceparent", &tp("00")), ("tracestate", &ts32)],
            Continued,
            "00",
        )
        .tracestate(&[&ts32]),
        case(
            "tracestate with 33 members",
            &[
                ("traceparent", &tp("00")),
                ("tracestate", &ts32),
                ("tracestate", "bar33=33"),
            ],
            Continued,
            "00",
        ),
        case(
            "tracestate duplicated key",
            &[("traceparent", &tp("01")), ("tracestate", "foo=1,foo=2")],
            Continued,
            "01",
        ),
        case(
            "tracestate uppercase key",
            &[("traceparent", &tp("01")), ("tracestate", "FOO=1")],
            Continued,
            "01",
        ),
        case(
            "tracestate value with =",
            &[("traceparent", &tp("01")), ("tracestate", "foo=bar=baz")],
            Continued,
            "01",
        ),
        case(
            "tracestate only empty members",
            &[("traceparent", &tp("01")), ("tracestate", " , ")],
            Continued,
            "01",
        ),
        // baggage and the dye tag
        case(
            "baggage of an untagged request",
            &[("baggage", "userId=alice,isProduction=false")],
            Restarted,
            "00",
        )
        .baggage(&["userId=alice,isProduction=false"]),
        case(
            "baggage gets the given tag",
            &[("x-env-tag", "canary"), ("baggage", "userId=alice")],
            Restarted,
            "00",
        )
        .baggage(&["env-tag=canary,userId=alice"]),
        case(
            "tag without baggage",
            &[("x-env-tag", "canary")],
            Restarted,
            "00",
        )
        .baggage(&["env-tag=canary"]),
        case(
            "forged env-tag removed",
            &[("baggage", "userId=alice, env-tag=canary")],
            Restarted,
            "00",
        )
        .baggage(&["userId=alice"]),
        case(
            "baggage of only a forged env-tag removed",
            &[("baggage", "env-tag=canary")],
            Restarted,
            "00",
        ),
        case("tag set by the split", &[], Restarted, "00")
            .host("promo.example.com")
            .baggage(&["env-tag=canary"]),
        case(
            "untrusted tag stripped from baggage",
            &[("x-env-tag", "canary"), ("baggage", "env-tag=canary,u=1")],
            Restarted,
            "00",
        )
        .host("strict.example.com")
        .baggage(&["u=1"]),
        case(
            "oversize baggage keeps whole members",
            &[("x-env-tag", "canary"), ("baggage", &oversize)],
            Restarted,
            "00",
        )
        .baggage(&[&format!("env-tag=canary,{},{}", big('a'), big('b'))]),
        case(
            "baggage of 200 members keeps 180",
            &[("x-env-tag", "canary"), ("baggage", &many)],
            Restarted,
            "00",
        )
        .baggage(&[&many_kept]),
        case(
            "invalid baggage members dropped on rewrite",
            &[
                ("x-env-tag", "canary"),
                ("baggage", "a=1,bad key=2,b=\"q\",c=3;p"),
            ],
            Restarted,
            "00",
        )
        .baggage(&["env-tag=canary,a=1,c=3;p"]),
    ]
}

#[tokio::test]
async fn propagation_table_through_the_gateway() {
    let shop = Shop::start();
    let gw = shop.gateway("");
    let mut conn = Conn::http1(gw.addr()).await;
    let cases = table();
    assert!(cases.len() >= 20);
    let mut new_traces = BTreeSet::new();
    for (i, c) in cases.iter().enumerate() {
        let id = i.to_string();
        let mut req = Req::get("/").host(c.host).header("x-case", &id);
        for (name, value) in &c.headers {
            req = req.header(name, value);
        }
        let resp = conn.send(req).await;
        assert_eq!(
            resp.status,
            StatusCode::OK,
            "case {}: {}",
            c.name,
            resp.text()
        );
        assert_eq!(
            resp.header("traceresponse"),
            None,
            "case {}: traceresponse is off",
            c.name
        );
        let got = shop.received(&id);
        let sent = sent_traceparent(&got, c.name);
        assert_ne!(
            sent.parent, PARENT,
            "case {}: the gateway span is the new parent",
            c.name
        );
        match c.trace {
            Trace::Continued => assert_eq!(sent.trace, TRACE, "case {}", c.name),
            Trace::Restarted => {
                assert_ne!(sent.trace, TRACE, "case {}", c.name);
                assert!(
                    new_traces.insert(sent.trace.clone()),
                    "case {}: trace ids repeat",
                    c.name
                );
            }
        }
        assert_eq!(sent.flags, c.flags, "case {}: flags", c.name);
        assert_eq!(
            got.header_all("tracestate"),
            c.tracestate,
            "case {}: tracestate",
            c.name
        );
        assert_eq!(
            got.header_all("baggage"),
            c.baggage,
            "case {}: baggage",
            c.name
        );
    }
}

#[tokio::test]
async fn without_an_endpoint_the_root_ratio_only_sets_the_flag() {
    let shop = Shop::start();
    let gw = shop.gateway("tracing: { sample_ratio: 1 }\n");
    let resp = Req::get("/")
        .host("shop.example.com")
        .header("x-case", "root")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(sent_traceparent(&shop.received("root"), "root").flags, "01");
    let resp = Req::get("/")
        .host("shop.example.com")
        .header("x-case", "child")
        .header("traceparent", &tp("00"))
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(
        sent_traceparent(&shop.received("child"), "child").flags,
        "00",
        "an incoming decision wins over the root ratio"
    );
}

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

/// `dyegate_spans_dropped_total` from the admin API.
async fn spans_dropped(gw: &Dyegate) -> u64 {
    let metrics = Req::get("/metrics").send(gw.admin_addr()).await.text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("dyegate_spans_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dyegate_spans_dropped_total in:\n{metrics}"))
}

/// Polls `dyegate_spans_dropped_total` until it reaches `at_least` or the deadline passes.
async fn wait_for_dropped(gw: &Dyegate, at_least: u64) -> u64 {
    let deadline = Instant::now() + SPANS_TIMEOUT;
    loop {
        let dropped = spans_dropped(gw).await;
        if dropped >= at_least || Instant::now() >= deadline {
            return dropped;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `n` requests on one connection; every one must succeed, none may wait on the exporter.
async fn requests_unaffected(gw: &Dyegate, n: usize) {
    let mut conn = Conn::http1(gw.addr()).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let start = Instant::now();
        let resp = conn.send(Req::get("/").host("shop.example.com")).await;
        slowest = slowest.max(start.elapsed());
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    }
    // The export timeout is 2 s: a request that waited on an export would take at least that.
    assert!(
        slowest < Duration::from_secs(1),
        "slowest request took {slowest:?}"
    );
}

#[tokio::test]
async fn collector_down_requests_unaffected_and_spans_counted_dropped() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::Http] {
        let shop = Shop::start();
        let nobody = free_addr();
        let gw = shop.gateway(&format!(
            "tracing: {{ endpoint: \"http://{nobody}\", protocol: {}, timeout_ms: 2000 }}\n",
            protocol.yaml()
        ));
        requests_unaffected(&gw, 50).await;
        let dropped = wait_for_dropped(&gw, 50).await;
        let counted = dropped >= 50;
        assert!(
            counted,
            "{protocol:?}: {dropped} of 50 spans counted dropped\n{}",
            gw.logs()
        );
        // The counters are also logged (at most once a second, when they change).
        let logged = dyegate_suite::wait_until(SPANS_TIMEOUT, || {
            gw.logs()
                .contains(&format!("spans_exported=0 spans_dropped={dropped} "))
        });
        assert!(logged, "{protocol:?}: counters not logged\n{}", gw.logs());
    }
}

#[tokio::test]
async fn collector_hanging_requests_unaffected_and_the_queue_bounded() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::Http] {
        let shop = Shop::start();
        let collector = OtlpReceiver::hanging(protocol);
        let queue = 16;
        let gw = shop
            .gateway(&collector.tracing_yaml(&format!("timeout_ms: 2000, queue_size: {queue}")));
        let n = 300;
        requests_unaffected(&gw, n).await;
        // At most one batch (<= queue) is held by the hung export and one queue is waiting:
        // every other span was dropped at once instead of being kept.
        let bound = (n - 2 * queue) as u64;
        let dropped = wait_for_dropped(&gw, bound).await;
        let counted = dropped >= bound;
        assert!(
            counted,
            "{protocol:?}: {dropped} spans dropped, expected >= {bound}\n{}",
            gw.logs()
        );
        assert!(
            collector.exports() >= 1,
            "{protocol:?}: the collector was reached"
        );
        assert!(collector.spans().is_empty());
    }
}

/// Pingora forks when daemonizing; the exporter's threads must be started after the fork.
#[tokio::test]
async fn spans_are_exported_from_a_daemon() {
    let shop = Shop::start();
    let collector = OtlpReceiver::grpc();
    let config = GatewayConfig::new(&shop.routes()).gateway_extra(&collector.tracing_yaml(""));
    let daemon = Daemon::start(&config);
    let resp = Req::get("/")
        .host("shop.example.com")
        .header("x-case", "d")
        .header("traceparent", &tp("01"))
        .send(config.proxy_addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", daemon.logs());
    let spans = collector.wait_for_spans(1, SPANS_TIMEOUT);
    assert_eq!(spans[0].trace_id_hex(), TRACE);
    assert_eq!(
        spans[0].span_id_hex(),
        sent_traceparent(&shop.received("d"), "d").parent
    );
}

/// `dyegate run --daemon`, killed through its pid file on drop.
struct Daemon {
    pid_file: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(config: &GatewayConfig) -> Daemon {
        let log = config.path("daemon.log");
        let mut text = std::fs::read_to_string(config.gateway_file()).expect("gateway.yaml");
        text = text.replace(
            "grace_period_seconds: 1 }",
            &format!("grace_period_seconds: 1, error_log: {} }}", log.display()),
        );
        config.write("gateway.yaml", &text);
        let status = std::process::Command::new(dyegate_suite::gateway::dyegate_bin())
            .args(["run", "--daemon", "-c"])
            .arg(config.gateway_file())
            .current_dir(config.dir())
            .status()
            .expect("running dyegate --daemon");
        let daemon = Daemon {
            pid_file: config.path("dyegate.pid"),
            log,
        };
        assert!(
            status.success(),
            "dyegate --daemon: {status}\n{}",
            daemon.logs()
        );
        let up = dyegate_suite::wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(config.proxy_addr()).is_ok()
        });
        assert!(up, "the daemon does not listen\n{}", daemon.logs());
        daemon
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.logs());
        }
        let pid = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
        let pid = pid.trim();
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid])
                .status();
        }
    }
}
