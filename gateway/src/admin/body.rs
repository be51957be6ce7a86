//! A request body read whole, under `admin.limits.body_read_timeout_ms` and a size limit:
//! Pingora bounds each read of a body (60 s), not the body, so a client dripping a byte now and
//! then, or one that stalls, would hold its connection (and a slot of the admin cap) for ever.

use crate::downstream::{DownstreamMetrics, Rejected};
use pingora::protocols::http::ServerSession;
use std::time::Duration;

/// Largest request body accepted (a rollback request is a few bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// How long a request body may take from the end of its head, and where a cut one is counted
/// (`dyegate_downstream_rejected_total{listener="admin",reason="slow_body"}`).
pub struct BodyDeadline {
    within: Duration,
    metrics: DownstreamMetrics,
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`MAX_BODY`] bytes.
    TooLarge,
    /// Not complete within the deadline (counted).
    Slow(Duration),
    /// The connection broke or the framing was invalid.
    Unreadable(String),
}

impl BodyError {
    pub fn message(&self) -> String {
        match self {
            BodyError::TooLarge => format!("request body over {MAX_BODY} bytes"),
            BodyError::Slow(within) => {
                format!("request body not received within {} ms", within.as_millis())
            }
            BodyError::Unreadable(e) => format!("cannot read request body: {e}"),
        }
    }
}

impl BodyDeadline {
    pub fn new(within: Duration, metrics: DownstreamMetrics) -> Self {
        BodyDeadline { within, metrics }
    }

    /// The whole body, read from now (just after the head) until the deadline. On an error
    /// the rest of the body is left unread: the caller closes the connection after answering.
    pub async fn read(&self, session: &mut ServerSession) -> Result<Vec<u8>, BodyError> {
        let read = async {
            let mut body = Vec::new();
            loop {
                match session.read_request_body().await {
                    Ok(Some(chunk)) => {
                        body.extend_from_slice(&chunk);
                        if body.len() > MAX_BODY {
                            return Err(BodyError::TooLarge);
                        }
                    }
                    Ok(None) => return Ok(body),
                    Err(e) => return Err(BodyError::Unreadable(e.to_string())),
                }
            }
        };
        match tokio::time::timeout(self.within, read).await {
            Ok(result) => result,
            Err(_) => {
                self.metrics.rejected(Rejected::SlowBody);
                Err(BodyError::Slow(self.within))
            }
        }
    }
}
