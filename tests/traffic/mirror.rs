//! Shadow traffic (issue 31), end to end: copies arrive as the real request went upstream
//! (method, path, query, headers, body) plus `x-dyegate-mirror: 1`, with a child `traceparent`,
//! over a few pooled connections; a client's own marker never reaches the real upstream;
//! `percent: 10` copies exactly 1,000 of 10,000 requests; a shadow that hangs, resets or is down
//! costs the client nothing; copies to an h2-over-TLS group and to an h2c group arrive as
//! HTTP/2. Real gateway, real upstreams. Comparisons: `mirror_compare.rs`.

use std::collections::HashMap;
use std::time::Duration;

use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{free_addr, poll_until, wait_until, Conn, GatewayConfig, Req, Upstream};
use http::StatusCode;

const MARKER: &str = "x-dyegate-mirror";

/// Route `shop` to group `stable`, mirrored as `mirror` says to group `shadow`.
pub(super) fn routes(stable: &str, shadow: &str, mirror: &str) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{stable}\"] }}\n  shadow: {{ targets: [\"{shadow}\"] }}\n\
         routes:\n  - name: shop\n    split: [{{ upstream: stable, weight: 1 }}]\n    mirror: [{mirror}]\n"
    )
}

/// `dyegate_mirror_requests_total` of route `shop`, group `shadow` and `outcome`.
pub(super) async fn mirror_total(gw: &dyegate_suite::Dyegate, outcome: &str) -> u64 {
    let text = Req::get("/metrics").send(gw.admin_addr()).await.text();
    let prefix = format!(
        "dyegate_mirror_requests_total{{group=\"shadow\",outcome=\"{outcome}\",route=\"shop\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().expect("counter"))
}

/// Waits until the copies counted with `outcomes` add up to `n`; the last sum otherwise.
pub(super) async fn wait_counted(
    gw: &dyegate_suite::Dyegate,
    outcomes: &[&str],
    n: u64,
) -> Result<(), String> {
    let sum = || async {
        let mut sum = 0;
        for o in outcomes {
            sum += mirror_total(gw, o).await;
        }
        sum
    };
    match poll_until(Duration::from_secs(60), sum, |s| *s == n).await {
        Ok(_) => Ok(()),
        Err(last) => {
            let all = Req::get("/mirrors").send(gw.admin_addr()).await.text();
            Err(format!(
                "{outcomes:?} add up to {last}, expected {n}; /mirrors: {all}"
            ))
        }
    }
}

/// Request `i`'s body: from none to about 60 KB (under the default `max_body_bytes`).
fn body_of(i: usize) -> Vec<u8> {
    let len = (i * 7919) % 60_000;
    (0..len).map(|k| (k * 31 + i) as u8).collect()
}

fn sorted(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.sort();
    headers
}

#[tokio::test]
async fn a_thousand_copies_arrive_as_the_requests_went_upstream_plus_the_marker() {
    let (stable, shadow) = (Upstream::start("stable"), Upstream::start("shadow"));
    // Room for every copy at once: none can be dropped, however slow the shadow is.
    let mirror = "{ upstream: shadow, percent: 100, methods: [GET, POST], max_in_flight: 1000 }";
    let gw = GatewayConfig::new(&routes(&stable.target(), &shadow.target(), mirror)).start();
    let mut conn = Conn::http1(gw.addr()).await;
    for i in 0..1000 {
        let req = if i % 2 == 0 {
            Req::get(&format!("/items/{i}?i={i}&x=y"))
        } else {
            Req::post(&format!("/orders/{i}?i={i}")).body(body_of(i))
        };
        // A client posing as a copy: the marker never reaches the real upstream.
        let req = req
            .header("x-client", &format!("c{i}"))
            .header(MARKER, "1")
            .header("traceparent", &format!("00-{i:032x}-00f067aa0ba902b7-01"));
        assert_eq!(conn.send(req).await.status, StatusCode::OK, "request {i}");
    }
    let ended = [
        "sent",
        "dropped",
        "shadow_error",
        "shadow_timeout",
        "too_large",
    ];
    assert_eq!(wait_counted(&gw, &ended, 1000).await, Ok(()));
    assert_eq!(wait_counted(&gw, &["sent"], 1000).await, Ok(()));
    let real: HashMap<_, _> = (stable.requests().into_iter())
        .map(|r| (r.query.clone(), r))
        .collect();
    assert_eq!(real.len(), 1000);
    assert!(real.values().all(|r| r.header(MARKER).is_none()));
    let copies = shadow.requests();
    assert_eq!(copies.len(), 1000);
    for copy in &copies {
        let original = &real[&copy.query];
        assert_eq!(
            (&copy.method, &copy.path),
            (&original.method, &original.path)
        );
        assert_eq!(copy.header_all(MARKER), vec!["1"], "{:?}", copy.query);
        let others = |headers: &[(String, String)]| {
            (headers.iter())
                .filter(|(n, _)| n != MARKER && n != "traceparent")
                .cloned()
                .collect()
        };
        assert_eq!(
            sorted(others(&copy.headers)),
            sorted(others(&original.headers)),
            "{:?}",
            copy.query
        );
        // A child in the same trace: the trace id (and sampled flag) of the real request's
        // upstream call, a span id of its own.
        let (c, o) = (
            copy.header_all("traceparent"),
            original.header_all("traceparent"),
        );
        assert_eq!((c.len(), o.len()), (1, 1), "{:?}", copy.query);
        assert_eq!((&c[0][..36], &c[0][52..]), (&o[0][..36], &o[0][52..]));
        assert_ne!(&c[0][36..52], &o[0][36..52], "{:?}", copy.query);
    }
    let real_bodies: HashMap<_, _> = (stable.bodies().into_iter())
        .map(|b| (b.query.clone(), (b.len, b.crc)))
        .collect();
    let copied = shadow.bodies();
    assert_eq!(copied.len(), 1000);
    for b in &copied {
        assert!(b.mirrored);
        assert_eq!(
            Some(&(b.len, b.crc)),
            real_bodies.get(&b.query),
            "{:?}",
            b.query
        );
    }
    let i = 999;
    let crc = crc32fast::hash(&body_of(i));
    assert_eq!(
        real_bodies[&Some(format!("i={i}"))],
        (body_of(i).len() as u64, crc)
    );
    eprintln!(
        "1000 copies (max_in_flight 1000) opened {} connections to the shadow",
        shadow.connections()
    );
}

#[tokio::test]
async fn copies_reuse_pooled_connections() {
    let (stable, shadow) = (Upstream::start("stable"), Upstream::start("shadow"));
    let mirror = "{ upstream: shadow, percent: 100, max_in_flight: 4 }";
    let gw = GatewayConfig::new(&routes(&stable.target(), &shadow.target(), mirror)).start();
    let mut conn = Conn::http1(gw.addr()).await;
    for i in 0..1000 {
        let resp = conn.send(Req::get(&format!("/pooled/{i}"))).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}");
    }
    // A copy that found 4 in flight was dropped; every other one was sent.
    assert_eq!(wait_counted(&gw, &["sent", "dropped"], 1000).await, Ok(()));
    let sent = mirror_total(&gw, "sent").await;
    let opened = shadow.connections();
    eprintln!("{sent} copies sent (max_in_flight 4) opened {opened} connections to the shadow");
    // At most 4 are open at once (one per copy in flight); a few more may have been opened
    // over the run, when Pingora's pool gave up an idle connection its idle watch still held
    // (it closes that one). Reuse is the rule: one connection per 20 copies at the very most.
    assert!(
        opened >= 1 && opened as u64 * 20 <= sent,
        "{opened} connections for {sent} copies"
    );
}

#[tokio::test]
async fn ten_percent_of_10000_requests_is_exactly_1000_copies() {
    // 16 clients at once: the counter is shared, the share still exact.
    let (stable, shadow) = (Upstream::start("stable"), Upstream::start("shadow"));
    let gw = GatewayConfig::new(&routes(
        &stable.target(),
        &shadow.target(),
        "{ upstream: shadow, percent: 10 }",
    ))
    .start();
    let addr = gw.addr();
    let clients: Vec<_> = (0..16)
        .map(|c| {
            tokio::spawn(async move {
                let mut conn = Conn::http1(addr).await;
                for i in 0..625 {
                    let resp = conn.send(Req::get(&format!("/p/{c}/{i}"))).await;
                    assert_eq!(resp.status, StatusCode::OK);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    assert_eq!(wait_counted(&gw, &["sent"], 1_000).await, Ok(()));
    assert_eq!(shadow.request_count(), 1_000);
    assert_eq!(stable.request_count(), 10_000);
    assert_eq!(mirror_total(&gw, "dropped").await, 0);
}

/// 100 requests to route `shop` mirrored as `mirror` says to `shadow` (which fails): every
/// client request answered 200, every copy counted with one of `ended`.
async fn no_failed_client_request(shadow: &str, mirror: &str, ended: &[&str]) {
    let stable = Upstream::start("stable");
    let gw = GatewayConfig::new(&routes(&stable.target(), shadow, mirror)).start();
    let mut conn = Conn::http1(gw.addr()).await;
    for i in 0..100 {
        let resp = conn.send(Req::get(&format!("/h/{i}"))).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}");
    }
    assert_eq!(stable.request_count(), 100);
    assert_eq!(wait_counted(&gw, ended, 100).await, Ok(()));
    assert!(
        mirror_total(&gw, ended[0]).await >= 1,
        "no copy ended {}",
        ended[0]
    );
}

/// Services behind the shadow stay in its lane: a copy to the group a dye tag names carries
/// that tag (header and baggage member, the client's other baggage kept); the real request
/// goes on untagged to stable.
#[tokio::test]
async fn a_copy_carries_the_tag_of_the_shadows_lane() {
    let (stable, shadow) = (Upstream::start("stable"), Upstream::start("shadow"));
    let table = format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  shadow: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: shop\n    dye: {{ tags: {{ canary: shadow }} }}\n    \
         split: [{{ upstream: stable, weight: 1 }}]\n    mirror: [{{ upstream: shadow, percent: 100 }}]\n",
        stable.target(),
        shadow.target()
    );
    let gw = GatewayConfig::new(&table).start();
    let resp = Req::get("/lane")
        .header("baggage", "user=7")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(wait_counted(&gw, &["sent"], 1).await, Ok(()));
    let real = stable.requests();
    let copy = shadow.requests();
    assert_eq!((real.len(), copy.len()), (1, 1));
    assert_eq!(real[0].header("x-env-tag"), None);
    assert_eq!(real[0].header("baggage"), Some("user=7"));
    assert_eq!(copy[0].header_all("x-env-tag"), vec!["canary"]);
    let baggage = copy[0].header("baggage").unwrap_or_default();
    let mut members: Vec<&str> = baggage.split(',').map(str::trim).collect();
    members.sort();
    assert_eq!(members, ["env-tag=canary", "user=7"], "{baggage}");
}

#[tokio::test]
async fn a_hanging_shadow_costs_the_client_no_failed_request() {
    let shadow = FaultyUpstream::start("shadow", Fault::Hang);
    let mirror = "{ upstream: shadow, percent: 100, timeout_ms: 200, max_in_flight: 8 }";
    no_failed_client_request(&shadow.target(), mirror, &["shadow_timeout", "dropped"]).await;
}

#[tokio::test]
async fn a_resetting_shadow_costs_the_client_no_failed_request() {
    let shadow = FaultyUpstream::start("shadow", Fault::ResetBeforeResponse);
    let mirror = "{ upstream: shadow, percent: 100, compare: { body: hash } }";
    no_failed_client_request(&shadow.target(), mirror, &["shadow_error", "dropped"]).await;
    let stalled = FaultyUpstream::start("shadow", Fault::ResetMidResponse);
    no_failed_client_request(&stalled.target(), mirror, &["shadow_error", "dropped"]).await;
}

#[tokio::test]
async fn a_down_shadow_costs_the_client_no_failed_request() {
    // Nothing listens there.
    let down = free_addr().to_string();
    let mirror = "{ upstream: shadow, percent: 100, compare: { status: true } }";
    no_failed_client_request(&down, mirror, &["shadow_error", "dropped"]).await;
}

#[tokio::test]
async fn copies_wait_for_nothing_on_a_slow_shadow() {
    // The client's answers come while every copy is still held at the shadow.
    let stable = Upstream::start("stable");
    let shadow = FaultyUpstream::start("shadow", Fault::Hold);
    let mirror = "{ upstream: shadow, percent: 100, timeout_ms: 60000, max_in_flight: 4 }";
    let gw = GatewayConfig::new(&routes(&stable.target(), &shadow.target(), mirror)).start();
    let mut conn = Conn::http1(gw.addr()).await;
    for i in 0..20 {
        let resp = conn.send(Req::get(&format!("/held/{i}"))).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}");
    }
    assert!(wait_until(Duration::from_secs(30), || shadow.held() == 4));
    assert_eq!(wait_counted(&gw, &["dropped"], 16).await, Ok(()));
    shadow.release();
    assert_eq!(wait_counted(&gw, &["sent"], 4).await, Ok(()));
}

#[tokio::test]
async fn copies_speak_what_the_shadow_group_speaks_h2_over_tls_and_h2c() {
    use dyegate_suite::certs::TestCa;
    let ca = TestCa::new("shadow CA");
    let stable = Upstream::start("stable");
    let tls = Upstream::start_tls("shadow-tls", &ca.leaf(&["shadow.internal"]));
    let h2c = Upstream::start("shadow-h2c");
    let text = format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  \
         shadow-tls: {{ targets: [\"{}\"], protocol: h2, tls: {{ sni: shadow.internal, ca: ca.pem }} }}\n  \
         shadow-h2c: {{ targets: [\"{}\"], protocol: h2c }}\n\
         routes:\n  - name: shop\n    split: [{{ upstream: stable, weight: 1 }}]\n    \
         mirror: [{{ upstream: shadow-tls, percent: 100, methods: [GET, POST] }}, \
         {{ upstream: shadow-h2c, percent: 100, methods: [GET, POST] }}]\n",
        stable.target(),
        tls.target(),
        h2c.target()
    );
    let config = GatewayConfig::new(&text);
    config.write("ca.pem", &ca.pem());
    let gw = config.start();
    let mut conn = Conn::http1(gw.addr()).await;
    for i in 0..20 {
        let req = Req::post(&format!("/both/{i}?i={i}")).body(body_of(i));
        assert_eq!(conn.send(req).await.status, StatusCode::OK, "request {i}");
    }
    assert!(wait_until(Duration::from_secs(60), || {
        tls.bodies().len() == 20 && h2c.bodies().len() == 20
    }));
    let real: HashMap<_, _> = (stable.bodies().into_iter())
        .map(|b| (b.query.clone(), (b.len, b.crc)))
        .collect();
    for shadow in [&tls, &h2c] {
        for copy in shadow.requests() {
            assert_eq!(copy.version, "HTTP/2.0", "{}", shadow.name());
            assert_eq!(copy.header(MARKER), Some("1"));
            assert_eq!(copy.method, "POST");
        }
        for b in shadow.bodies() {
            assert_eq!(
                Some(&(b.len, b.crc)),
                real.get(&b.query),
                "{}",
                shadow.name()
            );
        }
    }
}
