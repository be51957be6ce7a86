//! The connections copies travel on: Pingora's connector with its own keep-alive pool, apart
//! from the real traffic's, reached through the shadow target's prepared peer, so a copy
//! speaks what the group speaks (HTTP/1.1 or h2, cleartext or TLS with the group's `tls`).
//! A copy takes an idle connection to its target when there is one and gives it back when its
//! answer was read whole; a new one is opened only when every open one is busy, so no more are
//! open to a target than copies in flight to it (`max_in_flight`), but for an idle one the pool
//! gives up while its idle watch still holds it (Pingora closes that one).

use super::answer::{Summarizer, Summary};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri};
use pingora::connectors::http::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::http::RequestHeader;
use pingora::protocols::http::client::HttpSession;
use pingora::upstreams::peer::HttpPeer;
use std::time::{Duration, Instant};

/// The header every copy carries.
pub const MARKER: &str = "x-dyegate-mirror";

/// Idle connections kept, over every shadow target.
const IDLE_KEPT: usize = 1024;
/// How long an idle connection is kept.
const IDLE_FOR: Duration = Duration::from_secs(60);

/// Request headers a copy never carries as they came: its body is whole, so its framing is
/// its own, and nothing waits for `100 Continue`.
const REFRAMED: [http::HeaderName; 6] = [
    http::header::TRANSFER_ENCODING,
    http::header::CONTENT_LENGTH,
    http::header::CONNECTION,
    http::header::EXPECT,
    http::header::UPGRADE,
    http::header::TE,
];

/// The copies' connections.
pub struct Pool {
    connector: Connector,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            connector: Connector::new(Some(ConnectorOptions::new(IDLE_KEPT))),
        }
    }
}

/// A copy's request as it goes out.
#[derive(Clone)]
pub struct Outgoing {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Pool {
    /// Sends `req` to `peer` and reads the whole answer, summarized with its body hashed up to
    /// `limit` bytes. Errors are text for the debug log (the copy's outcome says the rest).
    pub async fn exchange(
        &self,
        peer: &HttpPeer,
        req: Outgoing,
        limit: u64,
    ) -> Result<Summary, String> {
        let started = Instant::now();
        let (mut session, _reused) =
            (self.connector.get_http_session(peer).await).map_err(|e| format!("connect: {e}"))?;
        let head = head(&req, session.as_http2().is_some(), peer.is_tls())?;
        session
            .write_request_header(Box::new(head))
            .await
            .map_err(|e| format!("request: {e}"))?;
        if !req.body.is_empty() {
            (session.write_request_body(req.body, true).await)
                .map_err(|e| format!("request body: {e}"))?;
        }
        (session.finish_request_body().await).map_err(|e| format!("request body: {e}"))?;
        let mut answer = read_head(&mut session, limit).await?;
        while let Some(chunk) =
            (session.read_response_body().await).map_err(|e| format!("answer body: {e}"))?
        {
            answer.chunk(&chunk);
        }
        // Read whole: the connection can carry the next copy.
        (self.connector)
            .release_http_session(session, peer, Some(IDLE_FOR))
            .await;
        Ok(answer.finish(started.elapsed()))
    }
}

/// The answer's head, past any informational (1xx) one.
async fn read_head(session: &mut HttpSession, limit: u64) -> Result<Summarizer, String> {
    loop {
        (session.read_response_header().await).map_err(|e| format!("answer: {e}"))?;
        let head = session
            .response_header()
            .ok_or_else(|| "answer: no head".to_string())?;
        let status = head.status.as_u16();
        if !(100..200).contains(&status) {
            return Ok(Summarizer::new(status, &head.headers, limit));
        }
    }
}

/// The copy's head: as the real request went upstream, its own framing, plus [`MARKER`]; over
/// h2 the `Host` becomes the URI's authority, as Pingora does for the real request.
fn head(req: &Outgoing, h2: bool, tls: bool) -> Result<RequestHeader, String> {
    let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = RequestHeader::build(req.method.clone(), path.as_bytes(), None)
        .map_err(|e| format!("request: {e}"))?;
    let sized =
        !req.body.is_empty() || matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
    let len = HeaderValue::from(req.body.len());
    let mut framed = false;
    for (name, value) in &req.headers {
        // The length where the request had its own (one value), so the order stays.
        if name == http::header::CONTENT_LENGTH && sized && !framed {
            framed = true;
            (head.append_header(name.clone(), len.clone())).map_err(|e| format!("request: {e}"))?;
        } else if !REFRAMED.contains(name) {
            (head.append_header(name.clone(), value.clone()))
                .map_err(|e| format!("request: {e}"))?;
        }
    }
    if sized && !framed {
        (head.append_header(http::header::CONTENT_LENGTH, len))
            .map_err(|e| format!("request: {e}"))?;
    }
    (head.insert_header(MARKER, "1")).map_err(|e| format!("request: {e}"))?;
    super::trace::child_traceparent(&mut head);
    if h2 {
        for name in ["keep-alive", "proxy-connection"] {
            head.remove_header(name);
        }
        if let Some(host) = head.remove_header(&http::header::HOST) {
            let uri = Uri::builder()
                .scheme(if tls { "https" } else { "http" })
                .authority(host.as_bytes())
                .path_and_query(path)
                .build()
                .map_err(|e| format!("request: {e}"))?;
            head.set_uri(uri);
        }
    }
    Ok(head)
}
