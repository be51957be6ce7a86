//! A WebSocket client connection through the gateway.

use std::net::SocketAddr;

use http::HeaderValue;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::WebSocketStream;

/// Opens `ws://{host}{path}` over a TCP connection to `addr` with the extra `headers`; returns
/// the stream and the handshake response (its headers show which upstream answered).
pub async fn ws_connect(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (WebSocketStream<TcpStream>, Response) {
    let mut request = format!("ws://{host}{path}")
        .into_client_request()
        .expect("a valid WebSocket URL");
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_str(value).expect("a valid header value");
        request.headers_mut().insert(name, value);
    }
    let stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("TCP connection to {addr}: {e}"));
    tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap_or_else(|e| panic!("WebSocket handshake through {addr}: {e}"))
}
