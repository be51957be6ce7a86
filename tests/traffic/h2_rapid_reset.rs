//! HTTP/2 rapid reset (CVE-2023-44487) against the h2c listener (issue 17's corpus): one client
//! opens streams and resets each at once, as fast as it can; another client's requests are
//! served meanwhile, and the upstream never sees more requests than were sent.

use std::time::{Duration, Instant};

use dyegate_suite::{GatewayConfig, Req, Upstream};
use http::StatusCode;

const STREAMS: usize = 20_000;

/// Opens and resets up to `STREAMS` streams on one connection; returns how many were opened
/// and whether the gateway ended the connection first.
async fn rapid_reset(addr: std::net::SocketAddr) -> (usize, bool) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut client, conn) = h2::client::handshake(tcp).await.expect("h2c handshake");
    let driver = tokio::spawn(conn);
    let mut opened = 0;
    let mut cut = false;
    for _ in 0..STREAMS {
        let ready = tokio::time::timeout(Duration::from_secs(5), client.clone().ready()).await;
        let mut ready = match ready {
            Ok(Ok(r)) => r,
            _ => {
                cut = true;
                break;
            }
        };
        let req = http::Request::get("http://a/").body(()).expect("request");
        match ready.send_request(req, false) {
            Ok((_resp, mut body)) => {
                opened += 1;
                body.send_reset(h2::Reason::CANCEL);
            }
            Err(_) => {
                cut = true;
                break;
            }
        }
        client = ready;
        if opened % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
    (opened, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_does_not_starve_other_clients() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target()
    ))
    .start();
    let addr = gw.addr();
    let attack = tokio::spawn(rapid_reset(addr));
    // Meanwhile, an ordinary client: every request answered, none slow.
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let t = Instant::now();
        let resp = Req::get("/").send(addr).await;
        assert_eq!(resp.status, StatusCode::OK);
        slowest = slowest.max(t.elapsed());
    }
    let (opened, cut) = attack.await.expect("attacker task");
    // Generous: a debug build on a loaded box; starving shows as seconds or timeouts.
    assert!(slowest < Duration::from_secs(3), "slowest {slowest:?}");
    let seen = up.request_count();
    assert!(
        seen <= opened + 50,
        "{seen} upstream requests, {opened} streams + 50 sent"
    );
    let after = Req::get("/").send(addr).await;
    assert_eq!(after.status, StatusCode::OK);
    eprintln!(
        "| h2 rapid reset ({STREAMS} streams opened and reset at once) | {} after {opened} streams | {seen} of {} requests reached the upstream; 50 requests of another client all 200, slowest {slowest:?} |",
        if cut { "connection closed by the gateway" } else { "connection kept" },
        opened + 50
    );
}
