//! What must pass through the gateway unchanged: keep-alive on both sides, chunked bodies both
//! ways, a 10 MB streamed upload, HTTP/2 downstream (h2c prior knowledge), WebSocket; and what
//! happens when upstreams are down (502, fast).

use std::time::{Duration, Instant};

use bytes::Bytes;
use dyegate_suite::{
    free_addr, upstream_groups, upstreams_yaml, ws_connect, Conn, Dyegate, Req, Upstream,
};
use futures_util::{SinkExt, StreamExt};
use http::{StatusCode, Version};
use tokio_tungstenite::tungstenite::Message;

const SHOP: &str = "shop.example.com";

/// Stable and canary, a tag for canary, untagged traffic all to stable.
fn shop(stable: &Upstream, canary: &Upstream) -> Dyegate {
    Dyegate::start(&format!(
        "{}\
routes:
  - name: shop
    match: {{ host: {SHOP} }}
    dye:
      tags: {{ canary: shop-canary }}
    split:
      - {{ upstream: shop-stable, weight: 1 }}
",
        upstream_groups(&[("shop-stable", stable), ("shop-canary", canary)])
    ))
}

#[tokio::test]
async fn keep_alive_on_both_sides_over_100_requests() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = shop(&stable, &canary);

    let mut conn = Conn::http1(gw.addr()).await;
    for i in 0..100 {
        let resp = conn.send(Req::get(&format!("/item/{i}")).host(SHOP)).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}: {}", resp.text());
        assert_eq!(resp.upstream(), Some("shop-stable"));
        assert!(
            !conn.is_closed(),
            "gateway closed the client connection after {i}"
        );
    }
    assert_eq!(stable.request_count(), 100);
    assert!(
        stable.connections() <= 2,
        "100 sequential requests opened {} upstream connections",
        stable.connections()
    );
}

#[tokio::test]
async fn upstream_connections_are_pooled_across_client_connections() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = shop(&stable, &canary);

    for i in 0..50 {
        let resp = Req::get("/").host(SHOP).send(gw.addr()).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}");
    }
    assert_eq!(stable.request_count(), 50);
    assert!(
        stable.connections() <= 2,
        "50 sequential requests on 50 client connections opened {} upstream connections",
        stable.connections()
    );
}

#[tokio::test]
async fn targets_within_a_group_take_turns() {
    let one = Upstream::start("one");
    let two = Upstream::start("two");
    let gw = Dyegate::start(&format!(
        "{}\
routes:
  - name: all
    split: [{{ upstream: pair, weight: 1 }}]
",
        upstreams_yaml(&[("pair", &[&one.target(), &two.target()])])
    ));
    let mut conn = Conn::http1(gw.addr()).await;
    let mut order = Vec::new();
    for _ in 0..10 {
        let resp = conn.send(Req::get("/")).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        order.push(resp.upstream().expect("x-upstream").to_owned());
    }
    assert_eq!(one.request_count(), 5, "{order:?}");
    assert_eq!(two.request_count(), 5, "{order:?}");
    assert!(order.windows(2).all(|w| w[0] != w[1]), "{order:?}");
}

/// `n` chunks of 64 KiB with varying bytes, and their CRC-32.
fn upload(n: usize) -> (Vec<Bytes>, u32) {
    let mut crc = crc32fast::Hasher::new();
    let chunks: Vec<Bytes> = (0..n)
        .map(|i| {
            let chunk: Vec<u8> = (0..64 * 1024)
                .map(|j| ((i * 7919 + j * 31) % 251) as u8)
                .collect();
            crc.update(&chunk);
            Bytes::from(chunk)
        })
        .collect();
    (chunks, crc.finalize())
}

#[tokio::test]
async fn a_10_mb_chunked_upload_arrives_complete() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = shop(&stable, &canary);

    let (chunks, crc) = upload(160); // 160 x 64 KiB = 10 MiB
    let resp = Req::post("/upload")
        .host(SHOP)
        .header("x-env-tag", "canary")
        .body_stream(futures_util::stream::iter(chunks))
        .send(gw.addr())
        .await;

    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.upstream(), Some("shop-canary"));
    let echo = resp.json();
    assert_eq!(echo["body_len"], 10 * 1024 * 1024);
    assert_eq!(echo["body_crc"], crc);
}

#[tokio::test]
async fn a_sized_upload_arrives_complete() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = shop(&stable, &canary);

    let (chunks, crc) = upload(16);
    let body: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let resp = Req::post("/upload")
        .host(SHOP)
        .body(body)
        .send(gw.addr())
        .await;
    let echo = resp.json();
    assert_eq!(echo["body_len"], 16 * 64 * 1024);
    assert_eq!(echo["body_crc"], crc);
    assert_eq!(echo["headers"]["content-length"], "1048576");
}

#[tokio::test]
async fn a_chunked_response_streams_through() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = shop(&stable, &canary);

    let resp = Req::get("/stream?chunks=64&size=16384")
        .host(SHOP)
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.upstream(), Some("shop-stable"));
    assert_eq!(resp.body.len(), 64 * 16384);
    assert!(resp.body.iter().all(|b| *b == b'a'));
}

#[tokio::test]
async fn http2_downstream_with_prior_knowledge() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = shop(&stable, &canary);

    let mut conn = Conn::h2c(gw.addr()).await;
    // The route matches on host: over HTTP/2 that is the :authority.
    let resp = conn.send(Req::get("/h2").host(SHOP)).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.version, Version::HTTP_2);
    assert_eq!(resp.upstream(), Some("shop-stable"));

    let tagged = conn
        .send(Req::get("/h2").host(SHOP).header("x-env-tag", "canary"))
        .await;
    assert_eq!(tagged.upstream(), Some("shop-canary"));
    assert_eq!(tagged.echoed_header("x-env-tag").as_deref(), Some("canary"));

    let (chunks, crc) = upload(8);
    let posted = conn
        .send(
            Req::post("/h2-upload")
                .host(SHOP)
                .body_stream(futures_util::stream::iter(chunks)),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text());
    assert_eq!(posted.json()["body_len"], 8 * 64 * 1024);
    assert_eq!(posted.json()["body_crc"], crc);

    for i in 0..20 {
        let resp = conn.send(Req::get("/again").host(SHOP)).await;
        assert_eq!(
            resp.status,
            StatusCode::OK,
            "request {i}: {}\n{}",
            resp.text(),
            gw.logs()
        );
    }
    assert!(!conn.is_closed());
    assert_eq!(stable.request_count(), 22);
}

/// The canary answers the upgrade 50 ms after the request: Pingora 0.9.1 tears an upgrade down
/// when it reads the upstream's 101 before the request's (empty) body, which an instant 101
/// on loopback does about one time in ten on a loaded machine (cloudflare/pingora#946; the fix
/// is #947; docs/pingora-upstream.md). That race has its own test below, out of the suite.
#[tokio::test]
async fn websocket_upgrade_echoes_through_the_gateway() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = shop(&stable, &canary);

    let (mut ws, handshake) = ws_connect(
        gw.addr(),
        SHOP,
        "/ws?delay_ms=50",
        &[("x-env-tag", "canary")],
    )
    .await;
    assert_eq!(handshake.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        handshake.headers().get("x-upstream").map(|v| v.as_bytes()),
        Some(&b"shop-canary"[..])
    );

    for i in 0..10 {
        let text = format!("hello {i}");
        ws.send(Message::text(text.clone())).await.expect("send");
        let echoed = ws.next().await.expect("an echo");
        let echoed = echoed.unwrap_or_else(|e| panic!("message {i}: {e:?}\n{}", gw.logs()));
        assert_eq!(echoed, Message::text(text));
    }
    let blob: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
    ws.send(Message::binary(blob.clone())).await.expect("send");
    let echoed = ws.next().await.expect("an echo").expect("a message");
    assert_eq!(echoed, Message::binary(blob));
    ws.close(None).await.expect("close");

    let seen = canary.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/ws");
    assert!(seen[0]
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
    assert_eq!(stable.request_count(), 0);
}

/// Pingora 0.9.1's upgrade race (cloudflare/pingora#946): with an upstream that answers the
/// upgrade at once, the 101 can be read before the request's empty body, and the tunnel is torn
/// down right after the 101 (the client's first message gets EOF). Fails about one connection in
/// ten with both cores busy (`tests/flake.sh 20 --load -- --test traffic -- --ignored instant_101`);
/// passes once dyegate is on a Pingora with the fix (#947): then it joins the suite.
#[tokio::test]
#[ignore = "fails until Pingora fixes #946 (docs/pingora-upstream.md): a reproduction, not a check"]
async fn an_instant_101_keeps_the_tunnel_open() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = shop(&stable, &canary);
    let mut torn_down = 0;
    for _ in 0..50 {
        let (mut ws, _) = ws_connect(gw.addr(), SHOP, "/ws", &[("x-env-tag", "canary")]).await;
        ws.send(Message::text("hello")).await.expect("send");
        match ws.next().await {
            Some(Ok(echoed)) => assert_eq!(echoed, Message::text("hello")),
            _ => torn_down += 1,
        }
    }
    assert_eq!(
        torn_down, 0,
        "tunnels torn down right after their 101, of 50"
    );
}

#[tokio::test]
async fn a_dead_upstream_is_a_fast_502() {
    let dead = free_addr().to_string();
    let gw = Dyegate::start(&format!(
        "{}\
routes:
  - name: all
    split: [{{ upstream: gone, weight: 1 }}]
",
        upstreams_yaml(&[("gone", &[&dead])])
    ));
    // Pingora closes the client connection after a proxy failure, so a fresh one each time.
    for i in 0..3 {
        let start = Instant::now();
        let resp = Req::get("/").send(gw.addr()).await;
        let took = start.elapsed();
        assert_eq!(resp.status, StatusCode::BAD_GATEWAY, "request {i}");
        assert!(
            took < Duration::from_millis(500),
            "request {i} took {took:?} to fail"
        );
    }
}

#[tokio::test]
async fn a_group_whose_targets_all_refuse_is_a_fast_502() {
    let stable = Upstream::start("shop-stable");
    let (dead1, dead2) = (free_addr().to_string(), free_addr().to_string());
    let gw = Dyegate::start(&format!(
        "{}\
routes:
  - name: all
    dye:
      tags: {{ canary: shop-canary }}
    split: [{{ upstream: shop-stable, weight: 1 }}]
",
        upstreams_yaml(&[
            ("shop-stable", &[&stable.target()]),
            ("shop-canary", &[&dead1, &dead2]),
        ])
    ));
    let start = Instant::now();
    let resp = Req::get("/")
        .header("x-env-tag", "canary")
        .send(gw.addr())
        .await;
    let took = start.elapsed();
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY);
    assert!(took < Duration::from_millis(500), "took {took:?} to fail");

    // The healthy group is unaffected.
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.upstream(), Some("shop-stable"));
}
