//! Answers dyegate writes itself and the small readings of a request the hooks share.

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

/// Index of an upstream error kind in `telemetry::metrics::ERROR_KINDS`.
pub(super) fn error_kind(e: &Error) -> usize {
    match e.etype() {
        ConnectRefused => 0,
        ConnectTimedout | ReadTimedout | WriteTimedout => 1,
        ConnectionClosed | ReadError | WriteError => 2,
        _ => 3,
    }
}

/// A short plain-text answer of dyegate's own.
pub(super) struct Answer<'a> {
    pub status: u16,
    pub body: String,
    pub draining: bool,
    pub traceresponse: Option<[u8; TRACEPARENT_LEN]>,
    /// More headers (`retry-after`, `x-dyegate-decision`).
    pub headers: &'a [(&'static str, String)],
}

impl Answer<'_> {
    pub(super) async fn send(self, session: &mut Session) -> Result<bool> {
        let mut resp = ResponseHeader::build(self.status, Some(4 + self.headers.len()))?;
        resp.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
        resp.insert_header(http::header::CONTENT_LENGTH, self.body.len())?;
        if let Some(value) = self.traceresponse {
            resp.insert_header(TRACERESPONSE, &value[..])?;
        }
        for (name, value) in self.headers {
            resp.insert_header(*name, value.as_str())?;
        }
        session.set_keepalive(if self.draining { None } else { Some(60) });
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(Bytes::from(self.body)), true)
            .await?;
        Ok(true)
    }
}
