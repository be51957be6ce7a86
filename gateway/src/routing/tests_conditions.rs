//! The richer `match` forms and `dye.from` on compiled tables: path prefix/exact/regex, header,
//! query and cookie conditions (values, regex, present, range, not), client networks (IPv4 and
//! IPv6), and tags read from cookies and the query, trusted or not.

use super::{req, route, table, Req};
use crate::routing::RouteTable;

const AB: &str =
    "upstreams:\n  a: { targets: [\"127.0.0.1:9001\"] }\n  b: { targets: [\"127.0.0.1:9002\"] }\n";

/// A table of one route `r` to `a` with `matches` as its match, then a catch-all `rest` to `b`.
fn one(matches: &str) -> std::sync::Arc<RouteTable> {
    table(&format!(
        "{AB}routes:\n  - name: r\n    match: {matches}\n    split: [{{ upstream: a, weight: 1 }}]\n  - name: rest\n    split: [{{ upstream: b, weight: 1 }}]\n"
    ))
}

fn name(t: &RouteTable, r: &Req) -> String {
    route(t, r).0
}

#[test]
fn path_forms() {
    let t = one("{ path: { prefix: /api } }");
    assert_eq!(name(&t, &req("h", "/api/x")), "r");
    assert_eq!(name(&t, &req("h", "/ap")), "rest");
    let t = one("{ path: { exact: /api/v1 } }");
    assert_eq!(name(&t, &req("h", "/api/v1")), "r");
    assert_eq!(
        name(&t, &req("h", "/api/v1?x=1")),
        "r",
        "the query is not the path"
    );
    assert_eq!(name(&t, &req("h", "/api/v1/")), "rest");
    let t = one("{ path: { regex: \"^/api/v[0-9]+/\" } }");
    assert_eq!(name(&t, &req("h", "/api/v2/cart")), "r");
    assert_eq!(name(&t, &req("h", "/api/v/cart")), "rest");
    assert_eq!(name(&t, &req("h", "/x/api/v2/")), "rest");
    // Raw path: not percent-decoded.
    let t = one("{ path: { exact: \"/a%20b\" } }");
    assert_eq!(name(&t, &req("h", "/a%20b")), "r");
    let t = one("{ path: { regex: \"v[0-9]\" } }");
    assert_eq!(name(&t, &req("h", "/x/v2")), "r", "search semantics");
}

#[test]
fn header_forms() {
    let t = one("{ headers: { x-region: { regex: \"^eu-\" } } }");
    assert_eq!(name(&t, &req("h", "/").header("x-region", "eu-west")), "r");
    assert_eq!(
        name(&t, &req("h", "/").header("x-region", "us-eu-1")),
        "rest"
    );
    assert_eq!(
        name(
            &t,
            &req("h", "/")
                .header("x-region", "us")
                .header("x-region", "eu-1")
        ),
        "r",
        "any line"
    );
    assert_eq!(name(&t, &req("h", "/")), "rest");

    let t = one("{ headers: { x-debug: { present: true } } }");
    assert_eq!(name(&t, &req("h", "/").header("x-debug", "")), "r");
    assert_eq!(name(&t, &req("h", "/")), "rest");
    let t = one("{ headers: { x-debug: { present: false } } }");
    assert_eq!(name(&t, &req("h", "/")), "r");
    assert_eq!(name(&t, &req("h", "/").header("x-debug", "1")), "rest");

    let t = one("{ headers: { x-user-id: { range: [1000, 1999] } } }");
    for (v, want) in [
        ("1000", "r"),
        ("1999", "r"),
        ("1500", "r"),
        ("999", "rest"),
        ("2000", "rest"),
        ("-1500", "rest"),
        ("abc", "rest"),
        ("1500.5", "rest"),
        ("+1500", "rest"),
        ("99999999999999999999999999", "rest"),
    ] {
        assert_eq!(name(&t, &req("h", "/").header("x-user-id", v)), want, "{v}");
    }
    let t = one("{ headers: { x-n: { range: [-9223372036854775808, -1] } } }");
    assert_eq!(
        name(&t, &req("h", "/").header("x-n", "-9223372036854775808")),
        "r"
    );
    assert_eq!(
        name(&t, &req("h", "/").header("x-n", "-9223372036854775809")),
        "rest"
    );

    let t = one("{ headers: { x-beta: { not: [off, \"0\"] } } }");
    assert_eq!(name(&t, &req("h", "/")), "r", "absent holds");
    assert_eq!(name(&t, &req("h", "/").header("x-beta", "on")), "r");
    assert_eq!(name(&t, &req("h", "/").header("x-beta", "off")), "rest");
    assert_eq!(
        name(
            &t,
            &req("h", "/").header("x-beta", "on").header("x-beta", "0")
        ),
        "rest"
    );

    let t = one("{ headers: { x-client: [mobile, web] } }");
    assert_eq!(name(&t, &req("h", "/").header("x-client", "web")), "r");
    assert_eq!(name(&t, &req("h", "/").header("x-client", "tv")), "rest");
}

#[test]
fn query_forms() {
    let t = one("{ query: { env: [canary] } }");
    assert_eq!(name(&t, &req("h", "/p?env=canary")), "r");
    assert_eq!(name(&t, &req("h", "/p?a=1&env=canary&b")), "r");
    assert_eq!(
        name(&t, &req("h", "/p?env=stable&env=canary")),
        "r",
        "any value"
    );
    assert_eq!(name(&t, &req("h", "/p?env=%63anary")), "r", "decoded");
    assert_eq!(name(&t, &req("h", "/p?env=stable")), "rest");
    assert_eq!(name(&t, &req("h", "/p")), "rest");
    let t = one("{ query: { q: { regex: \"^a b$\" }, uid: { range: [1, 5] } } }");
    assert_eq!(name(&t, &req("h", "/?q=a+b&uid=3")), "r");
    assert_eq!(name(&t, &req("h", "/?q=a%20b&uid=5")), "r");
    assert_eq!(name(&t, &req("h", "/?q=a+b&uid=6")), "rest");
    let t = one("{ query: { debug: { present: false } } }");
    assert_eq!(name(&t, &req("h", "/?x=1")), "r");
    assert_eq!(name(&t, &req("h", "/?debug")), "rest");
}

#[test]
fn cookie_forms() {
    let t = one("{ cookies: { plan: { regex: \"^pro\" } } }");
    assert_eq!(
        name(&t, &req("h", "/").header("cookie", "a=1; plan=pro-2")),
        "r"
    );
    assert_eq!(
        name(
            &t,
            &req("h", "/")
                .header("cookie", "plan=free")
                .header("cookie", "plan=pro")
        ),
        "r",
        "a repeated name matches if any pair does"
    );
    assert_eq!(
        name(&t, &req("h", "/").header("cookie", "plan=free")),
        "rest"
    );
    assert_eq!(
        name(&t, &req("h", "/").header("cookie", "xplan=pro")),
        "rest"
    );
    assert_eq!(name(&t, &req("h", "/")), "rest");
    let t = one("{ cookies: { beta: { not: [\"no\"] } } }");
    assert_eq!(name(&t, &req("h", "/")), "r");
    assert_eq!(name(&t, &req("h", "/").header("cookie", "beta=no")), "rest");
}

#[test]
fn client_networks_v4_and_v6() {
    let t = one("{ client_ip: [10.0.0.0/8, \"2001:db8::/32\", 192.168.1.7] }");
    for (ip, want) in [
        ("10.1.2.3", "r"),
        ("192.168.1.7", "r"),
        ("192.168.1.8", "rest"),
        ("2001:db8:77::1", "r"),
        ("2001:db9::1", "rest"),
        ("::ffff:10.0.0.1", "r"),
        ("127.0.0.1", "rest"),
    ] {
        assert_eq!(name(&t, &req("h", "/").peer(ip)), want, "{ip}");
    }
}

#[test]
fn all_conditions_must_hold_and_first_route_wins() {
    let t = table(&format!(
        "{AB}routes:
  - name: gray
    match:
      path: {{ regex: \"^/api/\" }}
      headers: {{ x-user-id: {{ range: [1000, 1999] }} }}
      query: {{ env: [canary] }}
      cookies: {{ plan: [pro] }}
      client_ip: [10.0.0.0/8]
    split: [{{ upstream: a, weight: 1 }}]
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    split: [{{ upstream: b, weight: 1 }}]
"
    ));
    let full = || {
        req("h", "/api/x?env=canary")
            .header("x-user-id", "1500")
            .header("cookie", "plan=pro")
            .peer("10.0.0.9")
    };
    assert_eq!(name(&t, &full()), "gray");
    assert_eq!(name(&t, &full().peer("11.0.0.9")), "api");
    assert_eq!(
        name(
            &t,
            &req("h", "/api/x?env=canary")
                .header("x-user-id", "1500")
                .peer("10.0.0.9")
        ),
        "api"
    );
    assert_eq!(name(&t, &req("h", "/other")), "404");
}

const TAGS: &str = "upstreams:\n  stable: { targets: [\"127.0.0.1:9001\"] }\n  canary: { targets: [\"127.0.0.1:9002\"] }\n";

#[test]
fn tags_from_cookie_and_query() {
    let t = table(&format!(
        "{TAGS}routes:
  - name: open
    match: {{ path_prefix: /open }}
    dye: {{ from: [header, \"cookie:env_tag\", \"query:env\"], tags: {{ canary: canary }} }}
    split: [{{ upstream: stable, weight: 1 }}]
  - name: trusted
    match: {{ path_prefix: /trusted }}
    dye: {{ from: [\"cookie:env_tag\"], tags: {{ canary: canary }}, trusted_sources: [10.0.0.0/8] }}
    split: [{{ upstream: stable, weight: 1 }}]
"
    ));
    let r = |x: Req| {
        let (route, group, reason, tag) = route(&t, &x);
        format!("{route} {group} {reason} {}", tag.unwrap_or_default())
    };
    // The header first, as today.
    assert_eq!(
        r(req("h", "/open").header("x-env-tag", "canary")),
        "open canary tag keep:canary"
    );
    // A cookie tag is set as the header upstream.
    assert_eq!(
        r(req("h", "/open").header("cookie", "env_tag=canary")),
        "open canary tag set:canary"
    );
    assert_eq!(
        r(req("h", "/open?env=canary&x=1")),
        "open canary tag set:canary"
    );
    // First source present wins: the header over the cookie.
    assert_eq!(
        r(req("h", "/open")
            .header("x-env-tag", "other")
            .header("cookie", "env_tag=canary")),
        "open stable fallback keep:other"
    );
    // An unknown tag from the query goes upstream as the header.
    assert_eq!(
        r(req("h", "/open?env=beta")),
        "open stable fallback set:beta"
    );
    // The first pair of a repeated cookie is the tag.
    assert_eq!(
        r(req("h", "/open").header("cookie", "env_tag=canary; env_tag=beta")),
        "open canary tag set:canary"
    );
    // A malformed tag is stripped, not skipped.
    assert_eq!(r(req("h", "/open?env=bad!")), "open stable split strip");

    // trusted_sources: the cookie counts from 10/8 only; elsewhere the header is stripped.
    let cookie = |peer: &str| {
        r(req("h", "/trusted")
            .header("cookie", "env_tag=canary")
            .peer(peer))
    };
    assert_eq!(cookie("10.1.1.1"), "trusted canary tag set:canary");
    assert_eq!(cookie("127.0.0.1"), "trusted stable split strip");
    // `header` is no source here: a tag header sent anyway does not travel upstream.
    assert_eq!(
        r(req("h", "/trusted")
            .header("x-env-tag", "canary")
            .peer("10.1.1.1")),
        "trusted stable split strip"
    );
}

#[test]
fn cookies_and_query_are_parsed_only_when_a_route_reads_them() {
    use crate::routing::{Parsed, RequestInfo};
    let decide = |t: &RouteTable, path: &str| {
        let headers = req("h", "/").header("cookie", "plan=pro").headers;
        let parsed = Parsed::default();
        let info = RequestInfo {
            method: &http::Method::GET,
            host: "h",
            path,
            query: Some("env=canary"),
            headers: &headers,
            client: None,
            parsed: &parsed,
        };
        t.decide(&info);
        parsed.touched()
    };
    let plain = one("{ path_prefix: /x, headers: { x-a: [\"1\"] } }");
    assert_eq!(decide(&plain, "/"), (false, false));
    let rich = one("{ path_prefix: /x, cookies: { plan: [pro] } }");
    assert_eq!(decide(&rich, "/"), (false, false), "pruned by the index");
    assert_eq!(decide(&rich, "/x"), (true, false));
}
