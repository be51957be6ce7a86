//! The suite's own tools, checked without the gateway: if the test upstream or client were
//! wrong, every end-to-end test would lie.

use std::time::{Duration, Instant};

use bytes::Bytes;
use dyegate_suite::{free_port, ws_connect, Conn, Req, Upstream};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn upstream_echoes_the_request_as_json() {
    let up = Upstream::start("stable");
    let resp = Req::post("/api/items?x=1")
        .host("shop.example.com")
        .header("X-Env-Tag", "canary")
        .body("hello")
        .send(up.addr())
        .await;

    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.upstream(), Some("stable"));
    let echo = resp.json();
    assert_eq!(echo["upstream"], "stable");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/items");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["headers"]["host"], "shop.example.com");
    assert_eq!(echo["headers"]["x-env-tag"], "canary");
    assert_eq!(echo["body_len"], 5);
    assert_eq!(echo["body_crc"], crc32fast::hash(b"hello"));

    let recorded = up.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/api/items");
    assert_eq!(recorded[0].header("x-env-tag"), Some("canary"));
}

#[tokio::test]
async fn upstream_answers_status_and_slow_paths() {
    let up = Upstream::start("stable");
    let resp = Req::get("/status/418").send(up.addr()).await;
    assert_eq!(resp.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(resp.upstream(), Some("stable"));

    let start = Instant::now();
    let resp = Req::get("/slow?ms=150").send(up.addr()).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn upstream_streams_a_chunked_response() {
    let up = Upstream::start("stable");
    let resp = Req::get("/stream?chunks=10&size=1000")
        .send(up.addr())
        .await;
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!(resp.body.len(), 10_000);
}

#[tokio::test]
async fn upstream_counts_connections_and_keeps_them_alive() {
    let up = Upstream::start("stable");
    let mut conn = Conn::http1(up.addr()).await;
    for _ in 0..10 {
        assert_eq!(conn.send(Req::get("/")).await.status, StatusCode::OK);
    }
    Req::get("/").send(up.addr()).await;
    assert_eq!(up.connections(), 2);
    assert_eq!(up.request_count(), 11);
}

#[tokio::test]
async fn upstream_reads_a_streamed_body_completely() {
    let up = Upstream::start("stable");
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let chunks = futures_util::stream::iter(std::iter::repeat_n(chunk.clone(), 32));
    let resp = Req::post("/upload")
        .body_stream(chunks)
        .send(up.addr())
        .await;
    let mut crc = crc32fast::Hasher::new();
    for _ in 0..32 {
        crc.update(&chunk);
    }
    let echo = resp.json();
    assert_eq!(echo["body_len"], 32 * 64 * 1024);
    assert_eq!(echo["body_crc"], crc.finalize());
    assert_eq!(echo["headers"]["transfer-encoding"], "chunked");
}

#[tokio::test]
async fn upstream_speaks_h2c() {
    let up = Upstream::start("stable");
    let mut conn = Conn::h2c(up.addr()).await;
    let resp = conn.send(Req::get("/h2").host("shop.example.com")).await;
    assert_eq!(resp.version, http::Version::HTTP_2);
    assert_eq!(resp.json()["version"], "HTTP/2.0");
}

#[tokio::test]
async fn upstream_echoes_websocket_messages() {
    let up = Upstream::start("stable");
    let (mut ws, handshake) = ws_connect(up.addr(), "shop.example.com", "/ws", &[]).await;
    assert_eq!(
        handshake.headers().get("x-upstream").map(|v| v.as_bytes()),
        Some(&b"stable"[..])
    );
    ws.send(Message::text("ping 1")).await.expect("send text");
    let echoed = ws.next().await.expect("an echo").expect("a message");
    assert_eq!(echoed, Message::text("ping 1"));
    ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send binary");
    let echoed = ws.next().await.expect("an echo").expect("a message");
    assert_eq!(echoed, Message::binary(vec![1u8, 2, 3]));
    ws.close(None).await.expect("close");
}

#[tokio::test]
async fn dropped_upstream_refuses_connections() {
    let up = Upstream::start("stable");
    let addr = up.addr();
    drop(up);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // ... and another upstream can take its address again.
    let again = Upstream::start_on(addr, "again").expect("rebinding the address");
    assert_eq!(
        Req::get("/").send(again.addr()).await.upstream(),
        Some("again")
    );
}

#[test]
fn free_ports_are_distinct() {
    let a = free_port();
    let b = free_port();
    assert_ne!(a, b);
}
