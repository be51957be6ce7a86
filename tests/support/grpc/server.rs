//! A server-streaming gRPC server on loopback (HTTP/2 with prior knowledge, the `h2` crate):
//! every call reads the request message, answers `messages` messages `pause` apart and ends
//! with the trailers `grpc-status` / `grpc-message` of its [`StreamScript`] (or, with no
//! messages and a non-zero status, a trailers-only answer; or, with `reset`, a stream reset
//! instead of the trailers: a server that breaks mid-call). It records every request head.

use crate::server_thread::{accept_each, ServerThread};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};

use super::frame::encode_frame;
use crate::RecordedRequest;

/// What each call gets.
#[derive(Debug, Clone)]
pub struct StreamScript {
    /// Messages sent (`"<server name> <i>"`), the first at once.
    pub messages: usize,
    /// Time between two messages (idle stream).
    pub pause: Duration,
    /// `grpc-status` of the trailers.
    pub status: u32,
    /// `grpc-message` of the trailers (omitted when empty).
    pub message: String,
    /// Instead of the trailers, after the messages: `RST_STREAM` with this reason (the call
    /// never gets a `grpc-status`).
    pub reset: Option<h2::Reason>,
}

impl Default for StreamScript {
    fn default() -> Self {
        StreamScript {
            messages: 3,
            pause: Duration::from_millis(50),
            status: 0,
            message: String::new(),
            reset: None,
        }
    }
}

/// A running server; dropping it stops it and closes its connections.
pub struct GrpcStreamServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
    _thread: ServerThread,
}

impl GrpcStreamServer {
    /// Starts a server called `name` on a fresh loopback port; it accepts connections when
    /// this returns.
    pub fn start(name: &str, script: StreamScript) -> Self {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("binding a gRPC server on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (name, script) = (Arc::<str>::from(name), Arc::new(script));
        let thread = {
            let seen = Arc::clone(&seen);
            ServerThread::start(format!("grpc-{name}"), listener, move |listener| {
                accept_each(listener, move |stream| {
                    let (name, script, seen) =
                        (Arc::clone(&name), Arc::clone(&script), Arc::clone(&seen));
                    tokio::spawn(connection(stream, name, script, seen));
                })
            })
            .expect("a server thread")
        };
        GrpcStreamServer {
            addr,
            seen,
            _thread: thread,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"127.0.0.1:PORT"`, as written in a `targets` list.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Every request head received so far (method, path, version, metadata), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    name: Arc<str>,
    script: Arc<StreamScript>,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
) {
    let Ok(mut conn) = h2::server::handshake(stream).await else {
        return;
    };
    while let Some(Ok((req, respond))) = conn.accept().await {
        let (parts, body) = req.into_parts();
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(RecordedRequest::from_parts(&parts));
        let (name, script) = (Arc::clone(&name), Arc::clone(&script));
        tokio::spawn(async move {
            // A client (or gateway) that went away mid-call is what some tests do.
            let _ = call(body, respond, &name, &script).await;
        });
    }
}

/// One call: the request read to its end, then the scripted answer.
async fn call(
    mut body: h2::RecvStream,
    mut respond: h2::server::SendResponse<Bytes>,
    name: &str,
    script: &StreamScript,
) -> Result<(), h2::Error> {
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = trailers(script);
    let head = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .header("x-upstream", name);
    if script.messages == 0 && script.status != 0 {
        // Trailers-only: the status travels in the only HEADERS frame.
        let mut resp = head.body(()).unwrap_or_default();
        resp.headers_mut().extend(trailers);
        respond.send_response(resp, true)?;
        return Ok(());
    }
    let resp = head.body(()).unwrap_or_default();
    let mut send = respond.send_response(resp, false)?;
    for i in 0..script.messages {
        if i > 0 {
            // time is tested: messages spaced in time are the stream under test (streaming, idle timeouts).
            tokio::time::sleep(script.pause).await;
        }
        send.send_data(encode_frame(format!("{name} {i}").as_bytes()), false)?;
    }
    match script.reset {
        Some(reason) => {
            // time is tested: the reset must come after the messages have left (h2 drops the frames of a stream still queued when it is reset), so that it breaks the call mid-way.
            tokio::time::sleep(Duration::from_millis(20)).await;
            send.send_reset(reason);
            Ok(())
        }
        None => send.send_trailers(trailers),
    }
}

fn trailers(script: &StreamScript) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from(script.status));
    if let Ok(m) = HeaderValue::from_str(&script.message) {
        if !script.message.is_empty() {
            t.insert("grpc-message", m);
        }
    }
    t
}
