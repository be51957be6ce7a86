//! HTTP/2 rapid reset (CVE-2023-44487) over h2c: one client opens thousands of streams and
//! resets each at once; other clients are served as usual meanwhile, the gateway survives, and
//! the upstream sees no more requests than were sent.

use std::time::{Duration, Instant};

use dyegate_suite::{Dyegate, Req, Upstream};
use http::StatusCode;
use tokio::net::TcpStream;

/// Opens `n` streams on one connection, resetting each right after its headers; returns how
/// many were opened before the gateway ended the connection (if it did).
async fn rapid_reset(addr: std::net::SocketAddr, n: usize) -> usize {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return 0;
    };
    let Ok((client, conn)) = h2::client::handshake(tcp).await else {
        return 0;
    };
    let driver = tokio::spawn(conn);
    let mut client = client;
    let mut opened = 0;
    for _ in 0..n {
        let Ok(ready) = client.ready().await else {
            break;
        };
        client = ready;
        let req = http::Request::get(format!("http://{addr}/"))
            .body(())
            .expect("request");
        match client.send_request(req, false) {
            Ok((_response, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                opened += 1;
            }
            Err(_) => break,
        }
    }
    driver.abort();
    opened
}

#[tokio::test]
async fn rapid_reset_streams_do_not_starve_other_clients() {
    let up = Upstream::start("stable");
    let gw = Dyegate::start(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target()
    ));
    let addr = gw.addr();
    let attackers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(rapid_reset(addr, 5000)))
        .collect();

    // Meanwhile, other clients: every request answered, none slow (generous bound: loaded box).
    let mut slowest = Duration::ZERO;
    for _ in 0..30 {
        let started = Instant::now();
        let resp = Req::get("/").send(addr).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        slowest = slowest.max(started.elapsed());
    }
    let mut opened = 0;
    for a in attackers {
        opened += a.await.expect("attacker task");
    }
    eprintln!("rapid reset: {opened} streams opened and reset over 4 connections; slowest other request {slowest:?}");
    assert!(
        slowest < Duration::from_secs(3),
        "a normal request took {slowest:?} during the rapid reset"
    );
    // The gateway is alive and serves after it, and no request reached the upstream that no
    // client sent (each reset stream may or may not have gone upstream before its reset).
    let resp = Req::get("/").send(addr).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(
        up.request_count() <= opened + 31,
        "upstream saw {} requests for {opened} reset streams and 31 normal requests",
        up.request_count()
    );
}
