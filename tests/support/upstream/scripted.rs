//! [`ScriptedUpstream`]: an upstream whose answers are the same for the same path on any
//! instance, except where its [`Script`] says otherwise, so that two of them (a stable and a
//! shadow) give answers a comparison finds equal or different on purpose. Every answer has
//! `x-request-id: NAME-N` (different on every answer: a header to ignore), `x-version: 1`
//! and the body `answer to PATH` repeated to `?size=N` bytes (default 64).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use super::respond::query_number;
use crate::server_thread::{accept_each, ServerThread};

/// Where a scripted upstream answers differently from a plain one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Script {
    /// Paths starting with this answer 500 (same body).
    pub fail: Option<&'static str>,
    /// Paths starting with this get their body's last byte changed.
    pub flip_byte: Option<&'static str>,
    /// Paths starting with this answer `x-version: 2`.
    pub other_version: Option<&'static str>,
}

struct Shared {
    name: String,
    script: Script,
    answers: AtomicUsize,
    marked: AtomicUsize,
}

/// Handle to a running scripted upstream; dropping it stops it.
pub struct ScriptedUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _thread: ServerThread,
}

impl ScriptedUpstream {
    pub fn start(name: &str, script: Script) -> Self {
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("binding a scripted upstream on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            name: name.to_string(),
            script,
            answers: AtomicUsize::new(0),
            marked: AtomicUsize::new(0),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            ServerThread::start(format!("scripted-{name}"), listener, move |listener| {
                accept_each(listener, move |stream| {
                    tokio::spawn(connection(stream, Arc::clone(&shared)));
                })
            })
            .expect("starting a scripted upstream")
        };
        ScriptedUpstream {
            addr,
            shared,
            _thread: thread,
        }
    }

    /// `"127.0.0.1:PORT"`, as written in a `targets` list.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Requests answered so far.
    pub fn request_count(&self) -> usize {
        self.shared.answers.load(Ordering::SeqCst)
    }

    /// Requests that carried `x-dyegate-mirror` so far.
    pub fn marked_count(&self) -> usize {
        self.shared.marked.load(Ordering::SeqCst)
    }
}

async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(answer(&shared, req).await) }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    // The whole request is read before answering, as a real service would.
    let _ = body.collect().await;
    if parts.headers.contains_key("x-dyegate-mirror") {
        shared.marked.fetch_add(1, Ordering::SeqCst);
    }
    let n = shared.answers.fetch_add(1, Ordering::SeqCst);
    let path = parts.uri.path();
    let on = |prefix: Option<&str>| prefix.is_some_and(|p| path.starts_with(p));
    let size = query_number(parts.uri.query(), "size").unwrap_or(64) as usize;
    let text = format!("answer to {path}\n");
    let mut body: Vec<u8> = text.bytes().cycle().take(size.max(1)).collect();
    if on(shared.script.flip_byte) {
        if let Some(last) = body.last_mut() {
            *last ^= 1;
        }
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    if on(shared.script.fail) {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    let version = if on(shared.script.other_version) {
        "2"
    } else {
        "1"
    };
    let headers = response.headers_mut();
    headers.insert("x-version", version.parse().expect("value"));
    let id = format!("{}-{n}", shared.name);
    headers.insert("x-request-id", id.parse().expect("value"));
    response
}
