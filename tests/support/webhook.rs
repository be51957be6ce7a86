//! A webhook receiver on loopback for the rollout hooks tests: it records every request
//! (path, headers, body, when) and answers as the test says — a status, or never (a hanging
//! receiver). Stopped by dropping it; [`Webhook::start_on`] brings one back on the same address.

use crate::server_thread::{accept_each, ServerThread};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Reads the request and never answers.
    Hang,
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// What it was answered.
    pub answer: Answer,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        (self.headers.get(name)).and_then(|v| v.to_str().ok().map(str::to_string))
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Answers to give in order, then `then` for every request after.
    script: Mutex<(Vec<Answer>, Option<Answer>)>,
}

pub struct Webhook {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _thread: ServerThread,
}

impl Webhook {
    /// A receiver on a fresh loopback port answering 200.
    pub fn start() -> Webhook {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("webhook on 127.0.0.1:0")
    }

    /// A receiver on `addr` answering 200.
    pub fn start_on(addr: SocketAddr) -> std::io::Result<Webhook> {
        let listener = std::net::TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            ServerThread::start("webhook".into(), listener, move |listener| {
                accept_each(listener, move |stream| {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(answer(req, &shared).await) }
                        });
                        let _ = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                })
            })?
        };
        Ok(Webhook {
            addr,
            shared,
            _thread: thread,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `first` in order, then `then` to every request after.
    pub fn answer(&self, first: &[Answer], then: Answer) {
        *self.shared.script.lock().unwrap_or_else(|p| p.into_inner()) =
            (first.to_vec(), Some(then));
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn answer(req: http::Request<Incoming>, shared: &Shared) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let a = {
        let mut script = shared.script.lock().unwrap_or_else(|p| p.into_inner());
        if script.0.is_empty() {
            script.1.unwrap_or(Answer::Status(200))
        } else {
            script.0.remove(0)
        }
    };
    shared
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Received {
            at: Instant::now(),
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            body,
            answer: a,
        });
    match a {
        Answer::Hang => std::future::pending().await,
        Answer::Status(s) => http::Response::builder()
            .status(s)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default(),
    }
}

/// Whether `header` (`t=UNIX,v1=HEX`) is the HMAC-SHA256 with `secret` of `UNIX.body`.
pub fn signed(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Some(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| {
            v1.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    ring::hmac::verify(&key, &signed, &tag).is_ok()
}
