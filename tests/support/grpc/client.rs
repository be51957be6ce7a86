//! One gRPC call over HTTP/2 with prior knowledge (what a gRPC client does to an h2c port):
//! the request message framed, then every answer message, the trailers and the time each
//! message arrived.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{HeaderMap, Request};

use super::frame::{decode_frames, encode_frame};

/// What came back.
#[derive(Debug, Default)]
pub struct GrpcReply {
    /// HTTP status (0: no answer head).
    pub status: u16,
    pub headers: HeaderMap,
    pub messages: Vec<bytes::Bytes>,
    /// When each message arrived, from the start of the call.
    pub arrivals: Vec<Duration>,
    pub trailers: Option<HeaderMap>,
    /// How the call failed, if it did (a reset stream, a closed connection).
    pub error: Option<String>,
    /// How long the whole call took.
    pub took: Duration,
}

impl GrpcReply {
    /// `grpc-status` from the trailers, or from the head of a trailers-only answer.
    pub fn grpc_status(&self) -> Option<&str> {
        self.trailer_or_header("grpc-status")
    }

    /// `grpc-message`, like [`Self::grpc_status`].
    pub fn grpc_message(&self) -> Option<&str> {
        self.trailer_or_header("grpc-message")
    }

    fn trailer_or_header(&self, name: &str) -> Option<&str> {
        self.trailers
            .as_ref()
            .and_then(|t| t.get(name))
            .or_else(|| self.headers.get(name))
            .and_then(|v| v.to_str().ok())
    }

    /// The messages as text.
    pub fn texts(&self) -> Vec<String> {
        (self.messages.iter())
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }
}

/// Calls `path` (`/package.Service/Method`) on `addr` with `metadata` and one request
/// `message`, and reads the answer to its end (or failure).
pub async fn grpc_call(
    addr: SocketAddr,
    path: &str,
    metadata: &[(&str, &str)],
    message: &[u8],
) -> GrpcReply {
    let started = Instant::now();
    let mut reply = GrpcReply::default();
    if let Err(e) = exchange(addr, path, metadata, message, started, &mut reply).await {
        reply.error = Some(e);
    }
    reply.took = started.elapsed();
    reply
}

async fn exchange(
    addr: SocketAddr,
    path: &str,
    metadata: &[(&str, &str)],
    message: &[u8],
    started: Instant,
    reply: &mut GrpcReply,
) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (client, conn) = h2::client::handshake(tcp)
        .await
        .map_err(|e| format!("h2 handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.map_err(|e| format!("h2 ready: {e}"))?;
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in metadata {
        req = req.header(*k, *v);
    }
    let req = req.body(()).map_err(|e| format!("request: {e}"))?;
    let (response, mut send) = client
        .send_request(req, false)
        .map_err(|e| format!("send request: {e}"))?;
    send.send_data(encode_frame(message), true)
        .map_err(|e| format!("send message: {e}"))?;
    let response = response.await.map_err(|e| format!("answer head: {e}"))?;
    reply.status = response.status().as_u16();
    reply.headers = response.headers().clone();
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("answer body: {e}"))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
        for m in decode_frames(&mut buf) {
            reply.messages.push(m);
            reply.arrivals.push(started.elapsed());
        }
    }
    reply.trailers = body
        .trailers()
        .await
        .map_err(|e| format!("trailers: {e}"))?;
    Ok(())
}
