//! The richer `match` forms end to end, through the real binary: path exact and regex, header
//! regex, presence, absence, integer ranges (non-numbers and overflows do not match), `not`,
//! query parameters and cookies, client networks (an IPv6 client from a PROXY v2 header);
//! tags from a cookie or the query, trusted or not; the query going upstream as sent; the
//! decision header naming the condition; a regex bomb refused at `check` and on reload.
//!
//! Each form once positive and once negative: the tables of inputs are unit-tested next to the
//! decision, in `gateway/src/routing/tests_conditions.rs`.

use dyegate_suite::proxy_protocol::proxy_v2_header;
use dyegate_suite::raw::RawClient;
use dyegate_suite::{upstream_groups, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;
use std::net::IpAddr;
use std::time::Duration;

/// Long enough for a debug build on a loaded machine.
const SETTLE: Duration = Duration::from_secs(10);

/// One route per form, each on its own path, to `a`; everything else to `b`.
const FORMS: &str = r#"routes:
  - name: path-exact
    match: { path: { exact: /exact } }
    split: [{ upstream: a, weight: 1 }]
  - name: path-regex
    match: { path: { regex: "^/re/v[0-9]+/" } }
    split: [{ upstream: a, weight: 1 }]
  - name: header-regex
    match: { path_prefix: /hre, headers: { x-region: { regex: "^eu-" } } }
    split: [{ upstream: a, weight: 1 }]
  - name: present
    match: { path_prefix: /hp, headers: { x-debug: { present: true } } }
    split: [{ upstream: a, weight: 1 }]
  - name: absent
    match: { path_prefix: /ha, headers: { x-debug: { present: false } } }
    split: [{ upstream: a, weight: 1 }]
  - name: range
    match: { path_prefix: /rg, headers: { x-user-id: { range: [1000, 1999] } } }
    split: [{ upstream: a, weight: 1 }]
  - name: not
    match: { path_prefix: /not, headers: { x-beta: { not: [off, "0"] } } }
    split: [{ upstream: a, weight: 1 }]
  - name: values
    match: { path_prefix: /val, headers: { x-client: [mobile, web] } }
    split: [{ upstream: a, weight: 1 }]
  - name: query
    match: { path_prefix: /q, query: { env: [canary] } }
    split: [{ upstream: a, weight: 1 }]
  - name: cookie
    match: { path_prefix: /ck, cookies: { plan: { regex: "^pro" } } }
    split: [{ upstream: a, weight: 1 }]
  - name: client
    match: { path_prefix: /ip, client_ip: [127.0.0.3, "2001:db8::/32"] }
    split: [{ upstream: a, weight: 1 }]
  - name: rest
    split: [{ upstream: b, weight: 1 }]
"#;

struct Forms {
    a: Upstream,
    gw: Dyegate,
    _b: Upstream,
}

impl Forms {
    fn start() -> Self {
        let a = Upstream::start("a");
        let b = Upstream::start("b");
        let gw = Dyegate::start(&format!(
            "{}{FORMS}",
            upstream_groups(&[("a", &a), ("b", &b)])
        ));
        Forms { a, gw, _b: b }
    }

    async fn upstream(&self, req: Req) -> String {
        let resp = req.host("shop.example.com").send(self.gw.addr()).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        resp.upstream().unwrap_or_default().to_string()
    }
}

#[tokio::test]
async fn each_form_holds_and_fails() {
    let fx = Forms::start();
    let cases: Vec<(&str, Req, &str)> = vec![
        ("path exact", Req::get("/exact"), "a"),
        ("path exact, longer", Req::get("/exact/x"), "b"),
        ("path regex", Req::get("/re/v2/cart"), "a"),
        ("path regex, no version", Req::get("/re/vx/cart"), "b"),
        (
            "header regex",
            Req::get("/hre").header("x-region", "eu-west"),
            "a",
        ),
        (
            "header regex, other",
            Req::get("/hre").header("x-region", "us-eu"),
            "b",
        ),
        ("present", Req::get("/hp").header("x-debug", "1"), "a"),
        ("present, absent", Req::get("/hp"), "b"),
        ("absent", Req::get("/ha"), "a"),
        (
            "absent, present",
            Req::get("/ha").header("x-debug", "1"),
            "b",
        ),
        ("range", Req::get("/rg").header("x-user-id", "1500"), "a"),
        (
            "range, above",
            Req::get("/rg").header("x-user-id", "2000"),
            "b",
        ),
        (
            "range, not a number",
            Req::get("/rg").header("x-user-id", "15e2"),
            "b",
        ),
        (
            "range, signed",
            Req::get("/rg").header("x-user-id", "+1500"),
            "b",
        ),
        (
            "range, past 64 bits",
            Req::get("/rg").header("x-user-id", "18446744073709551616001500"),
            "b",
        ),
        ("not, absent", Req::get("/not"), "a"),
        ("not, other", Req::get("/not").header("x-beta", "on"), "a"),
        ("not, denied", Req::get("/not").header("x-beta", "off"), "b"),
        ("values", Req::get("/val").header("x-client", "web"), "a"),
        (
            "values, other",
            Req::get("/val").header("x-client", "tv"),
            "b",
        ),
        ("query", Req::get("/q?x=1&env=canary"), "a"),
        ("query, encoded", Req::get("/q?env=%63anary"), "a"),
        ("query, other", Req::get("/q?env=stable"), "b"),
        (
            "cookie",
            Req::get("/ck").header("cookie", "a=1; plan=pro-2"),
            "a",
        ),
        (
            "cookie, other",
            Req::get("/ck").header("cookie", "plan=free"),
            "b",
        ),
        ("client, 127.0.0.1", Req::get("/ip"), "b"),
    ];
    for (what, req, want) in cases {
        assert_eq!(fx.upstream(req).await, want, "{what}");
    }
    let from = |last: u8| IpAddr::from([127, 0, 0, last]);
    let resp = Req::get("/ip")
        .host("shop.example.com")
        .send_from(from(3), fx.gw.addr())
        .await;
    assert_eq!(resp.upstream(), Some("a"), "client 127.0.0.3");
    assert!(fx.a.request_count() > 0);
}

#[tokio::test]
async fn the_decision_header_names_the_condition() {
    let fx = Forms::start();
    let debug = |req: Req| req.host("shop.example.com").header("x-dyegate-debug", "1");
    let resp = debug(Req::get("/hre").header("x-region", "us"))
        .send(fx.gw.addr())
        .await;
    let value = resp.header("x-dyegate-decision").unwrap_or_default();
    assert!(
        value.starts_with("route=rest; group=b; reason=split; tag=none; target=")
            && value
                .ends_with("; version=1; tries=1; match=any; miss=header-regex:headers.x-region"),
        "{value}"
    );
    let resp = debug(Req::get("/hre").header("x-region", "eu-1"))
        .send(fx.gw.addr())
        .await;
    let value = resp.header("x-dyegate-decision").unwrap_or_default();
    assert!(
        value.starts_with("route=header-regex; group=a; reason=split; tag=none; target=")
            && value.ends_with("; version=1; tries=1; match=path,headers.x-region; miss=none"),
        "{value}"
    );
}

#[tokio::test]
async fn an_ipv6_client_from_a_proxy_v2_header_matches_its_network() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let gw = GatewayConfig::new(&format!(
        "{}{FORMS}",
        upstream_groups(&[("a", &a), ("b", &b)])
    ))
    .with_proxy_protocol(None)
    .start();
    for (client, want) in [("[2001:db8::7]:4242", "a"), ("[2001:db9::7]:4242", "b")] {
        let header = proxy_v2_header(
            client.parse().expect("addr"),
            "[2001:db8::1]:443".parse().expect("addr"),
        );
        let mut c = RawClient::connect(gw.addr()).await;
        let mut bytes = header;
        bytes.extend_from_slice(b"GET /ip HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n");
        c.send(&bytes).await;
        let got = c.read_to_close(SETTLE).await;
        assert_eq!(got.status(), Some(200), "{}", got.text());
        let text = got.text().to_ascii_lowercase();
        assert!(
            text.contains(&format!("\r\nx-upstream: {want}\r\n")),
            "{client}: {text}"
        );
    }
}

/// Groups `stable` and `canary`; route `open` takes tags from the header, the `env_tag` cookie
/// and the `env` query parameter; route `guarded` from the cookie only, from 10.0.0.0/8 only.
fn tag_routes(stable: &Upstream, canary: &Upstream) -> String {
    format!(
        "{}routes:
  - name: open
    match: {{ path_prefix: /open }}
    dye: {{ from: [header, \"cookie:env_tag\", \"query:env\"], tags: {{ canary: canary }} }}
    split: [{{ upstream: stable, weight: 1 }}]
  - name: guarded
    match: {{ path_prefix: /guarded }}
    dye: {{ from: [\"cookie:env_tag\"], tags: {{ canary: canary }}, trusted_sources: [10.0.0.0/8] }}
    split: [{{ upstream: stable, weight: 1 }}]
",
        upstream_groups(&[("stable", stable), ("canary", canary)])
    )
}

#[tokio::test]
async fn cookie_and_query_tags_go_upstream_as_the_tag_header_and_untrusted_ones_are_stripped() {
    let stable = Upstream::start("stable");
    let canary = Upstream::start("canary");
    let gw = Dyegate::start(&tag_routes(&stable, &canary));

    // A cookie tag, trusted (no trusted_sources): the canary, with the tag header set; the
    // cookie goes as sent.
    let resp = Req::get("/open")
        .host("shop")
        .header("cookie", "a=1; env_tag=canary")
        .send(gw.addr())
        .await;
    assert_eq!(resp.upstream(), Some("canary"), "{}", resp.text());
    let seen = canary.requests().pop().expect("a request");
    assert_eq!(seen.header_all("x-env-tag"), ["canary"]);
    assert_eq!(seen.header_all("cookie"), ["a=1; env_tag=canary"]);

    // A query tag: the rest of the query goes upstream intact.
    let resp = Req::get("/open/x?a=1&env=canary&b=%20x+y&&c")
        .host("shop")
        .send(gw.addr())
        .await;
    assert_eq!(resp.upstream(), Some("canary"), "{}", resp.text());
    let seen = canary.requests().pop().expect("a request");
    assert_eq!(seen.path, "/open/x");
    assert_eq!(seen.query.as_deref(), Some("a=1&env=canary&b=%20x+y&&c"));
    assert_eq!(seen.header_all("x-env-tag"), ["canary"]);

    // The same cookie from a peer outside trusted_sources: routed as untagged, a tag header
    // sent along stripped, the cookie left as the client sent it.
    let resp = Req::get("/guarded")
        .host("shop")
        .header("cookie", "env_tag=canary")
        .header("x-env-tag", "canary")
        .send(gw.addr())
        .await;
    assert_eq!(resp.upstream(), Some("stable"), "{}", resp.text());
    let seen = stable.requests().pop().expect("a request");
    assert!(
        seen.header_all("x-env-tag").is_empty(),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header_all("cookie"), ["env_tag=canary"]);
}

#[tokio::test]
async fn cookie_tags_from_trusted_sources_count() {
    let stable = Upstream::start("stable");
    let canary = Upstream::start("canary");
    // The guarded route trusting loopback's 127.0.0.3 only.
    let routes = tag_routes(&stable, &canary).replace("10.0.0.0/8", "127.0.0.3");
    let gw = Dyegate::start(&routes);
    let guarded = |last: u8| {
        Req::get("/guarded")
            .host("shop")
            .header("cookie", "env_tag=canary")
            .send_from(IpAddr::from([127, 0, 0, last]), gw.addr())
    };
    assert_eq!(guarded(3).await.upstream(), Some("canary"));
    assert_eq!(
        canary
            .requests()
            .pop()
            .expect("a request")
            .header_all("x-env-tag"),
        ["canary"]
    );
    assert_eq!(guarded(1).await.upstream(), Some("stable"));
}

const BOMB: &str = "(a{100}){100}{100}";

#[tokio::test]
async fn a_regex_bomb_is_refused_at_check_and_on_reload_the_old_table_keeps_serving() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let gw = Dyegate::start(&format!(
        "{}{FORMS}",
        upstream_groups(&[("a", &a), ("b", &b)])
    ));
    let bad = format!(
        "{}routes:\n  - name: bomb\n    match: {{ headers: {{ x-a: {{ regex: \"{BOMB}\" }} }} }}\n    split: [{{ upstream: a, weight: 1 }}]\n",
        upstream_groups(&[("a", &a), ("b", &b)])
    );
    let file = gw.config().write("bomb.yaml", &bad);
    let expected = format!(
        "{}:6:39: routes[0].match.headers.x-a.regex: found \"{BOMB}\", expected a regular expression (it compiles past the limit of 262144 bytes)",
        file.display()
    );
    let out = gw
        .config()
        .cli(&["check", file.to_str().unwrap_or_default()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout.trim(), expected, "{out:?}");

    gw.config().write("routes.yaml", &bad);
    let status = gw
        .wait_for_status(SETTLE, "rejected reload", |s| s["reloads"]["failed"] == 1)
        .await;
    let expected = expected.replace(
        &file.display().to_string(),
        &gw.config().routes_file().display().to_string(),
    );
    assert_eq!(
        status["last_error"]["errors"],
        serde_json::json!([expected]),
        "{status:#}"
    );
    assert_eq!(status["version"], 1, "{status:#}");
    let resp = Req::get("/exact").host("shop").send(gw.addr()).await;
    assert_eq!(resp.upstream(), Some("a"), "the old table serves");
}
