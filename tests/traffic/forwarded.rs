//! The client's address behind layer-7 proxies (issue 26), end to end: the forwarding headers
//! the upstream sees from an untrusted peer (written from scratch) and from a trusted one
//! (extended), `Forwarded` and `X-Real-IP` when configured, the one client address in the access
//! log and in a route's tag trust, and garbage `X-Forwarded-For` served like any other request.
//! Trust is told apart by the client's loopback source address (127.0.0.1 trusted, 127.0.0.2
//! not). The rules themselves are unit-tested in `plugins/src/forwarded/`.

use std::net::IpAddr;
use std::time::Duration;

use dyegate_suite::{wait_until, GatewayConfig, RecordedRequest, Req, Upstream};
use http::StatusCode;
use serde_json::Value;

const HOST: &str = "shop.example.com";
const TRUSTED: [u8; 4] = [127, 0, 0, 1];
const STRANGER: [u8; 4] = [127, 0, 0, 2];

fn routes(stable: &Upstream, canary: &Upstream) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: all\n    dye: {{ tags: {{ canary: canary }}, trusted_sources: [203.0.113.0/24] }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        stable.target(),
        canary.target()
    )
}

/// A request carrying every forwarding header a client could forge.
fn forged() -> Req {
    Req::get("/")
        .host(HOST)
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "forged.example.com")
        .header("forwarded", "for=203.0.113.9;proto=https")
        .header("x-real-ip", "203.0.113.9")
}

/// The forwarding headers of the last request `up` received, every line of each.
fn forwarding(up: &Upstream) -> Vec<(&'static str, Vec<String>)> {
    let all = up.requests();
    let last: &RecordedRequest = all.last().expect("the upstream got the request");
    [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "x-real-ip",
    ]
    .into_iter()
    .map(|name| {
        let lines = last
            .header_all(name)
            .into_iter()
            .map(str::to_owned)
            .collect();
        (name, lines)
    })
    .collect()
}

fn expect(pairs: [(&'static str, &[&str]); 5]) -> Vec<(&'static str, Vec<String>)> {
    pairs
        .into_iter()
        .map(|(n, v)| (n, v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[tokio::test]
async fn by_default_an_untrusted_peers_headers_are_replaced() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let gw = GatewayConfig::new(&routes(&stable, &canary)).start();
    let resp = forged().send_from(IpAddr::from(STRANGER), gw.addr()).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(
        forwarding(&stable),
        expect([
            ("x-forwarded-for", &["127.0.0.2"]),
            ("x-forwarded-proto", &["http"]),
            ("x-forwarded-host", &[HOST]),
            ("forwarded", &[]),
            ("x-real-ip", &[]),
        ])
    );
}

#[tokio::test]
async fn a_trusted_proxys_headers_are_extended_and_name_the_client() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let gw = GatewayConfig::new(&routes(&stable, &canary))
        .gateway_extra(
            "forwarded: { trusted_sources: [127.0.0.1/32], headers: [x-forwarded, forwarded, x-real-ip] }\n\
             access_log: { path: access.log }",
        )
        .start();

    // Through the trusted proxy: its headers extended, the client read from them.
    let resp = forged()
        .header("x-env-tag", "canary")
        .send_from(IpAddr::from(TRUSTED), gw.addr())
        .await;
    assert_eq!(resp.upstream(), Some("canary"), "a tag of a trusted client");
    assert_eq!(
        forwarding(&canary),
        expect([
            ("x-forwarded-for", &["203.0.113.9, 127.0.0.1"]),
            ("x-forwarded-proto", &["https"]),
            ("x-forwarded-host", &["forged.example.com"]),
            (
                "forwarded",
                &["for=203.0.113.9;proto=https, for=127.0.0.1;proto=http;host=shop.example.com"]
            ),
            ("x-real-ip", &["203.0.113.9"]),
        ])
    );

    // The same headers from anyone else: replaced, and the tag is not theirs to set.
    let resp = forged()
        .header("x-env-tag", "canary")
        .send_from(IpAddr::from(STRANGER), gw.addr())
        .await;
    assert_eq!(
        resp.upstream(),
        Some("stable"),
        "a stranger's tag is stripped"
    );
    assert_eq!(
        forwarding(&stable),
        expect([
            ("x-forwarded-for", &["127.0.0.2"]),
            ("x-forwarded-proto", &["http"]),
            ("x-forwarded-host", &[HOST]),
            (
                "forwarded",
                &["for=127.0.0.2;proto=http;host=shop.example.com"]
            ),
            ("x-real-ip", &["127.0.0.2"]),
        ])
    );

    // The access log names the one client address: forwarded (no port), or the peer's.
    let log = gw.config().path("access.log");
    let read = || -> Vec<Value> {
        (std::fs::read_to_string(&log).unwrap_or_default().lines())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(10), || read().len() >= 2),
        "two access log lines: {:?}",
        read()
    );
    let clients: Vec<String> = (read().iter())
        .map(|l| l["client"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(clients[0], "203.0.113.9");
    assert!(clients[1].starts_with("127.0.0.2:"), "{clients:?}");
}

#[tokio::test]
async fn garbage_x_forwarded_for_is_served_like_any_request() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let gw = GatewayConfig::new(&routes(&stable, &canary))
        .gateway_extra(
            "forwarded: { trusted_sources: [127.0.0.1/32], headers: [x-forwarded, x-real-ip] }",
        )
        .start();
    let long = "1.2.3.4, ".repeat(4000);
    let token = "9".repeat(40_000);
    // (what, X-Forwarded-For sent, how the line upstream ends, the client)
    let cases = [
        (
            "a 36 KB list",
            long.as_str(),
            "1.2.3.4, 127.0.0.1",
            "1.2.3.4",
        ),
        (
            "no address",
            "unknown, _hidden, 999.1.1.1, ::::",
            "unknown, _hidden, 999.1.1.1, ::::, 127.0.0.1",
            "127.0.0.1",
        ),
        ("separators only", ",,, , ,", "127.0.0.1", "127.0.0.1"),
        (
            "a 40 KB token",
            token.as_str(),
            "9999, 127.0.0.1",
            "127.0.0.1",
        ),
    ];
    for (what, value, tail, client) in cases {
        let resp = Req::get("/")
            .host(HOST)
            .header("x-forwarded-for", value)
            .send_from(IpAddr::from(TRUSTED), gw.addr())
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{what}");
        let seen = forwarding(&stable);
        let xff = &seen[0].1;
        assert_eq!(xff.len(), 1, "{what}: one line upstream");
        assert!(xff[0].ends_with(tail), "{what}: the peer appended");
        // The client: the rightmost untrusted address (the walk reads no further), or, where
        // the entries are no addresses, the trusted peer that sent them.
        assert_eq!(seen[4].1, [client.to_string()], "{what}");
    }
}
