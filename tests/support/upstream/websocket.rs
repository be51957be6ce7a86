//! WebSocket on the upstream: answer the upgrade with 101 and echo every data message.

use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::respond::{query_number, UpstreamBody, UPSTREAM_HEADER};

/// Whether the request asks to upgrade to WebSocket.
pub(crate) fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answers the handshake and spawns the echo loop on the upgraded connection. `?delay_ms=N`
/// answers the 101 after N ms, as an upstream that does some work before it accepts.
pub(crate) async fn accept(name: &str, mut req: Request<Incoming>) -> Response<UpstreamBody> {
    if let Some(ms) = query_number(req.uri().query(), "delay_ms") {
        // An instant 101 can hit Pingora #946 (tests/traffic/protocols.rs).
        // time is tested: a 101 that comes N ms after the request.
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        let mut response = Response::new(Empty::new().map_err(|e| match e {}).boxed());
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let accept_key = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);

    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        echo(ws).await;
    });

    let mut response = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Ok(value) = HeaderValue::from_str(name) {
        headers.insert(UPSTREAM_HEADER, value);
    }
    response
}

/// Sends every text and binary message back. Pings and the closing handshake are answered by
/// tungstenite while the stream is polled, so the loop runs until the stream ends.
async fn echo<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}
