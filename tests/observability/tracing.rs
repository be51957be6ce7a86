//! Trace context end to end, propagation: what the upstream receives, one case per behaviour
//! (continued, restarted, flags, `tracestate` kept or dropped, `baggage` with the dye tag).
//!
//! Every kind of `traceparent`, `tracestate` and `baggage` (each kind of invalid, future
//! versions, limits) is decided by pure code, and tested there: the header rules in
//! `plugins/src/trace_context/`, and the whole table, through the gateway's own steps for a
//! request, in `gateway/src/telemetry/trace_propagation_tests.rs`.

use std::collections::BTreeSet;

use dyegate_suite::trace::*;
use dyegate_suite::{Conn, Req};
use http::StatusCode;

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
    vec![
        // traceparent
        case(
            "valid, sampled",
            &[("traceparent", &tp("01"))],
            Continued,
            "01",
        ),
        case(
            "unknown flag bits are zeroed",
            &[("traceparent", &tp("09"))],
            Continued,
            "01",
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
            "two traceparent headers",
            &[("traceparent", &tp("01")), ("traceparent", &tp("01"))],
            Restarted,
            "00",
        ),
        // tracestate
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
            "tracestate with 33 members",
            &[
                ("traceparent", &tp("00")),
                ("tracestate", &ts32),
                ("tracestate", "bar33=33"),
            ],
            Continued,
            "00",
        ),
        // baggage and the dye tag
        case(
            "baggage gets the given tag",
            &[("x-env-tag", "canary"), ("baggage", "userId=alice")],
            Restarted,
            "00",
        )
        .baggage(&["env-tag=canary,userId=alice"]),
        case(
            "forged env-tag removed",
            &[("baggage", "userId=alice, env-tag=canary")],
            Restarted,
            "00",
        )
        .baggage(&["userId=alice"]),
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
    ]
}

#[tokio::test]
async fn propagation_through_the_gateway() {
    let shop = Shop::start();
    let gw = shop.gateway("");
    let mut conn = Conn::http1(gw.addr()).await;
    let cases = table();
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
