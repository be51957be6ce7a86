//! The propagation table: every kind of incoming `traceparent`, `tracestate` and `baggage`, and
//! what the upstream request carries after the gateway's steps for a request (`start` in
//! `request_filter`, the routing decision's tag, `inject` in `upstream_request_filter`), on the
//! routes of `tests/trace_support` and the default settings its gateway runs with. The rules of
//! each header are unit-tested in `dyegate_plugins::trace_context`; `tests/observability/tracing.rs` keeps
//! one case per behaviour through the running gateway.

use super::*;

/// The routes of the end-to-end shop: `shop` routes tag `canary` and splits the rest to
/// stable, `promo` splits to canary (the split sets the tag), `strict` only trusts tags from
/// 10.0.0.0/8 (the requests below come from 127.0.0.1). Nothing dials the targets.
const SHOP_ROUTES: &str = "upstreams:
  shop-stable: { targets: [\"127.0.0.1:9001\"] }
  shop-canary: { targets: [\"127.0.0.1:9002\"] }
routes:
  - name: shop
    match: { host: shop.example.com }
    dye: { tags: { canary: shop-canary } }
    split: [ { upstream: shop-stable, weight: 1 } ]
  - name: promo
    match: { host: promo.example.com }
    dye: { tags: { canary: shop-canary } }
    split: [ { upstream: shop-canary, weight: 1 } ]
  - name: strict
    match: { host: strict.example.com }
    dye: { tags: { canary: shop-canary }, trusted_sources: [\"10.0.0.0/8\"] }
    split: [ { upstream: shop-stable, weight: 1 } ]
";

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

fn tp(flags: &str) -> String {
    format!("00-{TRACE}-{PARENT}-{flags}")
}

fn members(prefix: &str, range: std::ops::RangeInclusive<usize>) -> String {
    range
        .map(|i| format!("{prefix}{i:02}={i:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every case, by header: traceparent, tracestate, then baggage and the dye tag.
fn propagation_table() -> Vec<Case> {
    let mut cases = traceparent_cases();
    cases.extend(tracestate_cases());
    cases.extend(baggage_cases());
    cases
}

/// The `traceparent` cases. It is long because it is a table: one row per case of the header,
/// read top to bottom like the spec's sections.
fn traceparent_cases() -> Vec<Case> {
    use Trace::*;
    vec![
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
    ]
}

fn tracestate_cases() -> Vec<Case> {
    use Trace::*;
    let ts32 = members("bar", 1..=32);
    vec![
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
    ]
}

fn baggage_cases() -> Vec<Case> {
    use Trace::*;
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

/// Every value of header `name`, in order.
fn all(req: &RequestHeader, name: &str) -> Vec<String> {
    req.headers
        .get_all(name)
        .into_iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The upstream request of `c` as the gateway's steps build it from a request from 127.0.0.1:
/// the trace started from the incoming headers, the tag of the routing decision noted, the
/// context injected into the copy of the request that goes upstream.
fn upstream_request(tracing: &Tracing, table: &RouteTable, c: &Case) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    req.insert_header("host", c.host).expect("host");
    for (name, value) in &c.headers {
        req.append_header(*name, value.as_str())
            .unwrap_or_else(|e| panic!("case {}: header {name}: {e}", c.name));
    }
    let mut trace = tracing.start(&req);
    let host = crate::routing::normalize_host(c.host);
    let info = crate::routing::RequestInfo {
        method: &req.method,
        host: &host,
        path: req.uri.path(),
        query: req.uri.query(),
        headers: &req.headers,
        client: "127.0.0.1".parse().ok(),
        parsed: &crate::routing::Parsed::default(),
    };
    let outcome = table.decide(&info);
    assert!(
        matches!(outcome, Outcome::Routed(_)),
        "case {}: routed, got {outcome:?}",
        c.name
    );
    trace.record_outcome(table, 1, &outcome);
    assert_eq!(
        tracing.traceresponse(&trace),
        None,
        "case {}: traceresponse is off",
        c.name
    );
    let mut up = req.clone();
    tracing.inject(&trace, &mut up).expect("inject");
    up
}

#[test]
fn the_propagation_table() {
    let table = crate::config::routes_from_text("routes.yaml", SHOP_ROUTES.into(), None)
        .unwrap_or_else(|e| panic!("{e}"))
        .table;
    // The end-to-end gateway's settings: no `tracing` section.
    let tracing = Tracing::propagate_only();
    let cases = propagation_table();
    assert_eq!(cases.len(), 37);
    let mut new_traces = std::collections::BTreeSet::new();
    for c in &cases {
        let up = upstream_request(&tracing, &table, c);
        let sent = all(&up, TRACEPARENT);
        assert_eq!(
            sent.len(),
            1,
            "case {}: one traceparent, got {sent:?}",
            c.name
        );
        let parts: Vec<&str> = sent[0].split('-').collect();
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
            "case {}: traceparent {:?} is not a valid version 00",
            c.name,
            sent[0]
        );
        let (trace_id, parent, flags) = (parts[1], parts[2], parts[3]);
        assert_ne!(
            parent, PARENT,
            "case {}: the gateway span is the new parent",
            c.name
        );
        match c.trace {
            Trace::Continued => assert_eq!(trace_id, TRACE, "case {}", c.name),
            Trace::Restarted => {
                assert_ne!(trace_id, TRACE, "case {}", c.name);
                assert!(
                    new_traces.insert(trace_id.to_string()),
                    "case {}: trace ids repeat",
                    c.name
                );
            }
        }
        assert_eq!(flags, c.flags, "case {}: flags", c.name);
        assert_eq!(
            all(&up, TRACESTATE),
            c.tracestate,
            "case {}: tracestate",
            c.name
        );
        assert_eq!(all(&up, BAGGAGE), c.baggage, "case {}: baggage", c.name);
    }
}
