//! PROXY protocol listeners (issue 26), end to end: a real HAProxy in TCP mode (`send-proxy-v2`
//! and `send-proxy`) in front of plain and HTTPS listeners, an IPv6 client in a v2 header
//! written by hand, the refusals (no header, a malformed one, a peer outside
//! `proxy_protocol_sources`, a header too slow) counted in `dyegate_downstream_rejected_total`,
//! and a sticky `client_ip` split keyed on the source the header names.
//!
//! HAProxy connects to the gateway from 127.0.0.3 (`source` on its server line), so the TCP
//! peer the gateway sees is never the client; clients connect from other 127.x addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dyegate_suite::certs::TestCa;
use dyegate_suite::metrics::Scrape;
use dyegate_suite::proxy_protocol::{proxy_v2_header, Haproxy};
use dyegate_suite::raw::RawClient;
use dyegate_suite::tls::site::{wait_for_tls, write_pair, SHOP};
use dyegate_suite::tls::TlsClient;
use dyegate_suite::{free_addr, wait_until, Conn, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;
use serde_json::Value;

/// HAProxy's server line options: the header, and the balancer's own address.
const V2: &str = "send-proxy-v2 source 127.0.0.3";
const V1: &str = "send-proxy source 127.0.0.3";
const BALANCER: &str = "[127.0.0.3/32]";

/// Long enough for a debug build on a loaded machine.
const SETTLE: Duration = Duration::from_secs(10);

fn routes(up: &Upstream) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target()
    )
}

fn source(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// The `X-Forwarded-For` lines of the last request `up` received.
fn last_xff(up: &Upstream) -> Vec<String> {
    let all = up.requests();
    let last = all.last().expect("the upstream got a request");
    last.header_all("x-forwarded-for")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn rejected(scrape: &Scrape, reason: &str) -> f64 {
    scrape.value(
        "dyegate_downstream_rejected_total",
        &[("listener", "proxy"), ("reason", reason)],
    )
}

#[tokio::test]
async fn haproxy_send_proxy_v2_and_v1_carry_the_client_address() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&routes(&up))
        .with_proxy_protocol(Some(BALANCER))
        .gateway_extra("access_log: { path: access.log }")
        .start();
    let haproxy = Haproxy::start(gw.addr(), &[V2, V1]);
    for (i, client) in [(0, source(7)), (1, source(8))] {
        let frontend = haproxy.frontend(i);
        // Keep-alive through the balancer: every request of the connection carries it.
        let mut conn = Conn::http1_from(client, frontend).await;
        for _ in 0..3 {
            let resp = conn.send(Req::get("/")).await;
            assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
            assert_eq!(last_xff(&up), [client.to_string()], "frontend {i}");
        }
    }
    assert_eq!(up.request_count(), 6);

    // The access log names the client with the port it used towards HAProxy.
    let log = gw.config().path("access.log");
    let clients = || -> Vec<String> {
        (std::fs::read_to_string(&log).unwrap_or_default().lines())
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|l| l["client"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert!(
        wait_until(SETTLE, || clients().len() >= 6),
        "{:?}",
        clients()
    );
    let clients = clients();
    assert!(
        clients[..3].iter().all(|c| c.starts_with("127.0.0.7:")),
        "{clients:?}"
    );
    assert!(
        clients[3..].iter().all(|c| c.starts_with("127.0.0.8:")),
        "{clients:?}"
    );
    assert!(
        gw.logs()
            .contains(&format!("HTTP on {} (PROXY protocol)", gw.addr())),
        "the listening line names the PROXY protocol listener"
    );
}

#[tokio::test]
async fn an_ipv6_client_in_a_hand_written_v2_header() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&routes(&up))
        .with_proxy_protocol(None)
        .gateway_extra("forwarded: { headers: [x-forwarded, forwarded, x-real-ip] }")
        .start();
    let client: SocketAddr = "[2001:db8::7]:4242".parse().expect("addr");
    let header = proxy_v2_header(client, "[2001:db8::1]:443".parse().expect("addr"));
    let mut c = RawClient::connect(gw.addr()).await;
    // The header in two writes, the request after it: read until whole, the rest given back.
    c.send(&header[..10]).await;
    let mut rest = header[10..].to_vec();
    rest.extend_from_slice(
        b"GET / HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n",
    );
    c.send(&rest).await;
    let got = c.read_to_close(SETTLE).await;
    assert_eq!(got.status(), Some(200), "{}", got.text());
    let all = up.requests();
    let seen = all.last().expect("the upstream got the request");
    assert_eq!(seen.header_all("x-forwarded-for"), ["2001:db8::7"]);
    assert_eq!(
        seen.header_all("forwarded"),
        ["for=\"[2001:db8::7]\";proto=http;host=shop.example.com"]
    );
    assert_eq!(seen.header_all("x-real-ip"), ["2001:db8::7"]);
}

#[tokio::test]
async fn connections_without_a_valid_header_or_from_other_peers_are_closed_and_counted() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&routes(&up))
        .with_proxy_protocol(Some("[127.0.0.1/32]"))
        .gateway_extra("limits: { header_read_timeout_ms: 500 }")
        .start();
    let request = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let header = proxy_v2_header(
        "192.0.2.1:5000".parse().expect("addr"),
        "192.0.2.2:80".parse().expect("addr"),
    );
    let before = gw.metrics().await;
    let cases: [(&str, IpAddr, Vec<u8>, &str); 4] = [
        ("no header", source(1), request.to_vec(), "proxy_protocol"),
        (
            "a malformed header",
            source(1),
            b"PROXY TCP4 192.0.2.1 nowhere 1 2\r\n".to_vec(),
            "proxy_protocol",
        ),
        (
            "a peer outside the sources",
            source(9),
            [header.clone(), request.to_vec()].concat(),
            "proxy_protocol_source",
        ),
        (
            "half a header, then nothing",
            source(1),
            header[..20].to_vec(),
            "slow_headers",
        ),
    ];
    let mut want: HashMap<&str, f64> = HashMap::new();
    for (what, from, bytes, reason) in cases {
        let mut c = RawClient::connect_from(from, gw.addr()).await;
        // A refused peer may be closed before the bytes are written: either is a refusal.
        let _ = c.try_send(&bytes).await;
        let got = c.read_to_close(SETTLE).await;
        assert!(got.closed, "{what}: the connection is closed");
        assert!(
            got.bytes.is_empty(),
            "{what}: no answer, got {:?}",
            got.text()
        );
        *want
            .entry(reason)
            .or_insert_with(|| rejected(&before, reason)) += 1.0;
    }
    let after = gw
        .wait_for_metrics(SETTLE, "the refusals counted", |m| {
            want.iter().all(|(reason, n)| rejected(m, reason) >= *n)
        })
        .await;
    for (reason, n) in &want {
        assert_eq!(rejected(&after, reason), *n, "{reason}");
    }
    assert_eq!(
        up.request_count(),
        0,
        "nothing refused reached the upstream"
    );

    // The listener serves on: a valid header from an allowed peer.
    let mut c = RawClient::connect_from(source(1), gw.addr()).await;
    c.send(&[header, request.to_vec()].concat()).await;
    let got = c.read_to_close(SETTLE).await;
    assert_eq!(got.status(), Some(200), "{}", got.text());
    assert_eq!(last_xff(&up), ["192.0.2.1"]);
}

#[tokio::test]
async fn a_sticky_client_ip_split_is_keyed_on_the_proxy_source() {
    let stable = Upstream::start("stable");
    let canary = Upstream::start("canary");
    let routes = format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: all\n    split:\n      - {{ upstream: stable, weight: 50 }}\n      - {{ upstream: canary, weight: 50 }}\n    sticky: client_ip\n",
        stable.target(),
        canary.target()
    );
    let gw = GatewayConfig::new(&routes)
        .with_proxy_protocol(Some(BALANCER))
        .start();
    let haproxy = Haproxy::start(gw.addr(), &[V2]);
    // Every connection reaches the gateway from HAProxy's one address: keyed on the TCP peer,
    // all 40 clients would land in one group.
    let mut per_group: HashMap<String, usize> = HashMap::new();
    for host in 1..=40u8 {
        let client = IpAddr::V4(Ipv4Addr::new(127, 0, 1, host));
        let first = Req::get("/").send_from(client, haproxy.frontend(0)).await;
        let group = first.upstream().expect("x-upstream").to_owned();
        for _ in 0..2 {
            let again = Req::get("/").send_from(client, haproxy.frontend(0)).await;
            assert_eq!(again.upstream(), Some(group.as_str()), "client {client}");
        }
        *per_group.entry(group).or_default() += 1;
    }
    // 40 clients at 50/50: both groups get some (all on one side has odds 2^-39).
    assert_eq!(per_group.len(), 2, "{per_group:?}");
}

#[tokio::test]
async fn an_https_listener_takes_the_header_before_the_handshake() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let leaf = ca.leaf(&[SHOP]);
    let tls = free_addr();
    let cfg = GatewayConfig::new(&routes(&up));
    write_pair(&cfg, "shop", &leaf);
    let gw: Dyegate = cfg
        .gateway_extra(&format!(
            "tls:\n  listen: [{{ addr: \"{tls}\", proxy_protocol: true, proxy_protocol_sources: {BALANCER} }}]\n  certificates: [{{ cert: certs/shop.pem, key: certs/shop.key }}]"
        ))
        .start();
    wait_for_tls(tls).await;
    let haproxy = Haproxy::start(tls, &[V2]);
    let mut client = TlsClient::connect(haproxy.frontend(0), Some(SHOP))
        .await
        .unwrap_or_else(|e| panic!("TLS through HAProxy: {e}\n{}", gw.logs()));
    let (status, body) = client.get(SHOP, "/").await.expect("an answer");
    assert_eq!(status, 200, "{body}");
    let all = up.requests();
    let seen = all.last().expect("the upstream got the request");
    // TlsClient connects from 127.0.0.1; the gateway's TCP peer was HAProxy's 127.0.0.3.
    assert_eq!(seen.header_all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.header_all("x-forwarded-proto"), ["https"]);
}
