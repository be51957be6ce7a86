//! `routes[i].timeouts.stream_idle_ms` end to end: an upgraded connection (WebSocket) reads
//! with `stream_idle_ms` after its `101`, not with `read_ms`, so an idle WebSocket outlives
//! `read_ms` and is closed once idle for `stream_idle_ms` (a normal end, counted as
//! `kind="stream_idle"`); the wait for the `101` itself, and a plain request, keep `read_ms`.

use std::time::{Duration, Instant};

use dyegate_suite::metrics::{requests_total, Series};
use dyegate_suite::{ws_connect, Dyegate, Req, Upstream};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

/// Room for a loaded two-core machine on top of a timeout.
const SLACK: Duration = Duration::from_millis(1500);
const READ: Duration = Duration::from_millis(500);
const STREAM_IDLE: Duration = Duration::from_millis(3000);

fn gateway(up: &Upstream) -> Dyegate {
    Dyegate::start(&format!(
        "upstreams:\n  ws: {{ targets: [\"{}\"] }}\nroutes:\n  - name: chat\n    timeouts: {{ read_ms: 500, stream_idle_ms: 3000 }}\n    split: [{{ upstream: ws, weight: 1 }}]\n",
        up.target()
    ))
}

fn timeouts_total(kind: &str) -> Series {
    Series::new(
        "dyegate_timeouts_total",
        &[("kind", kind), ("route", "chat")],
    )
}

#[tokio::test]
async fn an_idle_websocket_outlives_read_ms_and_closes_after_stream_idle_ms() {
    let up = Upstream::start("ws");
    let gw = gateway(&up);
    // The 101 comes 50 ms after the request: Pingora #946 (tests/traffic/protocols.rs).
    let (mut ws, handshake) =
        ws_connect(gw.addr(), "chat.example.com", "/ws?delay_ms=50", &[]).await;
    assert_eq!(handshake.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("before")).await.expect("send");
    let echoed = ws.next().await.expect("an echo");
    assert_eq!(echoed.expect("a message"), Message::text("before"));

    // time is tested: idle for three times read_ms, half of stream_idle_ms.
    tokio::time::sleep(READ * 3).await;
    ws.send(Message::text("after 1.5 s idle"))
        .await
        .expect("send");
    match ws.next().await {
        Some(Ok(echoed)) => assert_eq!(echoed, Message::text("after 1.5 s idle")),
        other => panic!(
            "the idle WebSocket was cut before stream_idle_ms: {other:?}\n{}",
            gw.logs()
        ),
    }

    // Idle again, now past stream_idle_ms: the gateway closes the connection.
    let quiet = Instant::now();
    let end = tokio::time::timeout(STREAM_IDLE + SLACK, ws.next()).await;
    let took = quiet.elapsed();
    match end {
        Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => {}
        Ok(Some(Ok(other))) => panic!("unexpected message {other:?}"),
        Err(_) => panic!("still open {took:?} after the last message\n{}", gw.logs()),
    }
    assert!(
        took >= STREAM_IDLE - Duration::from_millis(200),
        "closed after {took:?} idle, expected stream_idle_ms 3000\n{}",
        gw.logs()
    );
    // A normal end: counted under its 101, not as an error; the timeout under `stream_idle`.
    let requests = |class| requests_total("chat", "ws", "none", class);
    gw.wait_for_metrics(Duration::from_secs(5), "an idle close", |s| {
        s.at(&timeouts_total("stream_idle")) == Some(1.0)
            && s.at(&requests("1xx")) == Some(1.0)
            && s.at(&requests("error")).unwrap_or(0.0) == 0.0
            && s.at(&timeouts_total("read")).unwrap_or(0.0) == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_late_101_and_a_slow_plain_answer_are_cut_at_read_ms() {
    let up = Upstream::start("ws");
    let gw = gateway(&up);

    let started = Instant::now();
    let resp = Req::get("/slow?ms=2500").send(gw.addr()).await;
    let took = started.elapsed();
    assert_eq!(resp.status, StatusCode::GATEWAY_TIMEOUT, "{}", resp.text());
    assert!(
        took >= READ && took < READ + SLACK,
        "504 after {took:?}, expected read_ms 500 (+ slack)"
    );

    // An upgrade whose 101 comes after read_ms: its head waits read_ms, not stream_idle_ms.
    let started = Instant::now();
    let resp = Req::get("/ws?delay_ms=2500")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send(gw.addr())
        .await;
    let took = started.elapsed();
    assert_eq!(
        resp.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}\n{}",
        resp.text(),
        gw.logs()
    );
    assert!(
        took >= READ && took < READ + SLACK,
        "504 after {took:?}, expected read_ms 500 (+ slack)"
    );
    gw.wait_for_metrics(Duration::from_secs(5), "two read timeouts", |s| {
        s.at(&timeouts_total("read")) == Some(2.0)
            && s.at(&timeouts_total("stream_idle")).unwrap_or(0.0) == 0.0
    })
    .await;
}
