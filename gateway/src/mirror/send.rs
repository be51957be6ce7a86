//! One copy sent to its shadow: its own connection over HTTP/1.1, one deadline over connect,
//! request and the whole answer (read and thrown away), never retried. The copy's place in
//! `max_in_flight` is held by its [`Entry`] until it ends, however it ends.

use super::{MirrorMetrics, Outcome};
use crate::routing::{Mirror, Route};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The header every copy carries.
pub const MARKER: &str = "x-dyegate-mirror";

/// An admitted copy of one mirror entry: holds its place in the entry's `max_in_flight`.
pub struct Entry {
    route: Arc<Route>,
    index: usize,
    group: Arc<str>,
    target: Option<SocketAddr>,
}

impl Entry {
    pub(super) fn new(route: Arc<Route>, index: usize, group: Arc<str>) -> Entry {
        Entry {
            route,
            index,
            group,
            target: None,
        }
    }

    pub(super) fn to(mut self, target: SocketAddr) -> Entry {
        self.target = Some(target);
        self
    }

    pub(super) fn mirror(&self) -> Option<&Mirror> {
        self.route.mirror.get(self.index)
    }

    /// Counts how the copy ended (its place is given back when it is dropped).
    pub(super) fn finish(self, metrics: &MirrorMetrics, outcome: Outcome) {
        metrics.outcome(&self.route.name, &self.group, outcome);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(m) = self.mirror() {
            m.done();
        }
    }
}

/// A copy ready to go.
pub struct Copy {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub entry: Entry,
}

/// Sends `copy` and counts how it ended; meant to run in its own task.
pub async fn send(copy: Copy, metrics: MirrorMetrics) {
    let timeout = copy.entry.mirror().map_or(Duration::ZERO, |m| m.timeout);
    let started = Instant::now();
    let Copy {
        method,
        uri,
        headers,
        body,
        entry,
    } = copy;
    let Some(target) = entry.target else {
        entry.finish(&metrics, Outcome::ShadowError);
        return;
    };
    let outcome =
        match tokio::time::timeout(timeout, exchange(target, method, uri, headers, body)).await {
            Err(_) => Outcome::ShadowTimeout,
            Ok(Err(e)) => {
                log::debug!("mirror to {target}: {e}");
                Outcome::ShadowError
            }
            Ok(Ok(status)) => {
                metrics.shadow_answer(
                    &entry.route.name,
                    &entry.group,
                    status,
                    started.elapsed().as_secs_f64(),
                );
                Outcome::Sent
            }
        };
    entry.finish(&metrics, outcome);
}

async fn exchange(
    target: SocketAddr,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    body: Bytes,
) -> Result<u16, String> {
    let tcp = TcpStream::connect(target)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // The body is whole: its length is known; the connection is the copy's alone.
    for h in [
        http::header::TRANSFER_ENCODING,
        http::header::CONTENT_LENGTH,
        http::header::CONNECTION,
    ] {
        headers.remove(h);
    }
    if !body.is_empty() || method == Method::POST || method == Method::PUT {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    headers.insert(MARKER, HeaderValue::from_static("1"));
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    *req.headers_mut() = headers;
    let answer = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = answer.status().as_u16();
    let mut body = answer.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|e| format!("answer: {e}"))?;
    }
    Ok(status)
}
