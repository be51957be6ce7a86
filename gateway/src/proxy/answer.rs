//! Answers dyegate writes itself and the small readings of a request the hooks share.

use super::error_body::{render, ErrorBody};
use crate::contain::timeout_kind;
use bytes::Bytes;
use dyegate_plugins::trace_context::{TRACEPARENT_LEN, TRACERESPONSE};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::proxy::Session;

pub(super) fn peer_ip(session: &Session) -> Option<std::net::IpAddr> {
    match session.client_addr() {
        Some(PeerAddr::Inet(a)) => Some(a.ip()),
        _ => None,
    }
}

pub(super) fn raw_host(req: &RequestHeader) -> &str {
    req.uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("")
}

/// The status Pingora's default `fail_to_proxy` answers an error with (0: the client is gone),
/// except that an upstream timeout is a 504, not a 502.
pub(super) fn error_status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ if e.esource() == &ErrorSource::Upstream && timeout_kind(e, false).is_some() => 504,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// The few words an error answer of `fail_to_proxy` says about `e`.
pub(super) fn error_detail(code: u16, e: &Error, group: Option<&str>) -> String {
    let what = match e.etype() {
        ConnectRefused => "connection refused",
        ConnectTimedout => "connect timed out",
        ReadTimedout => "read timed out",
        WriteTimedout => "write timed out",
        ConnectionClosed => "connection closed",
        ReadError => "read failed",
        WriteError => "write failed",
        TLSHandshakeFailure | InvalidCert | HandshakeError => "TLS handshake failed",
        _ => "failed",
    };
    let upstream = match group {
        Some(g) => format!("upstream group {g}"),
        None => "the upstream".to_string(),
    };
    match code {
        504 => format!("{upstream} did not answer in time ({what})"),
        502 => format!("{upstream} did not answer ({what})"),
        400 => "the request could not be read".to_string(),
        _ if code >= 500 => "the gateway could not answer".to_string(),
        _ => "the request was refused".to_string(),
    }
}

/// The head of an error answer: `server_header`, the body's type and length, not cached.
pub(super) fn error_head(
    code: u16,
    server: Option<&http::HeaderValue>,
    content_type: &'static str,
    len: usize,
) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(code, Some(6))?;
    if let Some(server) = server {
        resp.insert_header(http::header::SERVER, server)?;
    }
    resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
    resp.insert_header(http::header::CONTENT_LENGTH, len)?;
    resp.insert_header(http::header::CACHE_CONTROL, "private, no-store")?;
    Ok(resp)
}

/// Index of an upstream error kind in `telemetry::metrics::ERROR_KINDS`.
pub(super) fn error_kind(e: &Error) -> usize {
    match e.etype() {
        ConnectRefused => 0,
        ConnectTimedout | ReadTimedout | WriteTimedout => 1,
        ConnectionClosed | ReadError | WriteError => 2,
        _ => 3,
    }
}

/// A short answer of dyegate's own: plain text, or for an error (4xx/5xx) the status, the
/// body as its detail and the trace id ([`error_body`](super::error_body)).
pub(super) struct Answer<'a> {
    pub status: u16,
    pub body: String,
    pub draining: bool,
    pub traceresponse: Option<[u8; TRACEPARENT_LEN]>,
    /// The request's trace id (32 hex digits), named in an error's body.
    pub trace_id: Option<String>,
    /// gateway.yaml `server_header`.
    pub server: Option<http::HeaderValue>,
    /// gateway.yaml `tls.hsts` (sent over HTTPS only).
    pub hsts: Option<http::HeaderValue>,
    /// More headers (`retry-after`, `x-dyegate-decision`).
    pub headers: &'a [(&'static str, String)],
}

impl Answer<'_> {
    pub(super) async fn send(self, session: &mut Session) -> Result<bool> {
        let (content_type, body) = match self.status {
            400.. => render(
                &ErrorBody {
                    status: self.status,
                    detail: &self.body,
                    trace_id: self.trace_id.as_deref(),
                },
                &session.req_header().headers,
            ),
            _ => ("text/plain; charset=utf-8", self.body),
        };
        let mut resp = ResponseHeader::build(self.status, Some(6 + self.headers.len()))?;
        resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
        resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
        if let Some(server) = self.server {
            resp.insert_header(http::header::SERVER, server)?;
        }
        if let Some(value) = self.traceresponse {
            resp.insert_header(TRACERESPONSE, &value[..])?;
        }
        super::hsts::add(session, self.hsts.as_ref(), &mut resp)?;
        for (name, value) in self.headers {
            resp.insert_header(*name, value.as_str())?;
        }
        session.set_keepalive(if self.draining { None } else { Some(60) });
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await?;
        Ok(true)
    }
}
