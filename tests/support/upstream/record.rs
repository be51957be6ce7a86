//! What an upstream remembers: every request head it saw and every connection it accepted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use http::request::Parts;

/// The head of one request as the upstream received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `HTTP/1.1`, `HTTP/2.0`, ... (the version between the gateway and this upstream).
    pub version: String,
    /// Lowercased names in arrival order; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    pub(crate) fn from_parts(parts: &Parts) -> Self {
        Self {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            version: format!("{:?}", parts.version),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in arrival order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Shared between the accept loop, every connection task and the test's handle.
///
/// Recording can be turned off so that a long benchmark run does not grow memory without bound;
/// connections are always counted.
#[derive(Debug, Default)]
pub struct Recorder {
    record_requests: bool,
    connections: AtomicUsize,
    /// TLS handshakes the client gave up on (an HTTPS upstream only).
    handshake_failures: AtomicUsize,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Why connections ended in an error (a parse error hyper answered 400 for, a reset, ...).
    connection_errors: Mutex<Vec<String>>,
    bodies: Mutex<Vec<RecordedBody>>,
}

/// The body of one request as the upstream read it to its end (kept with the heads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedBody {
    pub path: String,
    pub query: Option<String>,
    /// The request carried `x-dyegate-mirror` (a mirrored copy).
    pub mirrored: bool,
    pub len: u64,
    /// CRC-32 (IEEE) of the whole body.
    pub crc: u32,
}

impl Recorder {
    pub fn new(record_requests: bool) -> Self {
        Self {
            record_requests,
            ..Self::default()
        }
    }

    pub(crate) fn connection_accepted(&self) {
        self.connections.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn handshake_failed(&self) {
        self.handshake_failures.fetch_add(1, Ordering::SeqCst);
    }

    /// TLS handshakes that failed so far (an HTTPS upstream only).
    pub fn handshake_failures(&self) -> usize {
        self.handshake_failures.load(Ordering::SeqCst)
    }

    pub(crate) fn request(&self, parts: &Parts) {
        if self.record_requests {
            let recorded = RecordedRequest::from_parts(parts);
            self.lock().push(recorded);
        }
    }

    pub(crate) fn connection_failed(&self, error: String) {
        self.connection_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(error);
    }

    /// The errors connections ended with so far (`hyper`'s words), oldest first.
    pub fn connection_errors(&self) -> Vec<String> {
        self.connection_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn body(&self, parts: &Parts, len: u64, crc: u32) {
        if self.record_requests {
            let body = RecordedBody {
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                mirrored: parts.headers.contains_key("x-dyegate-mirror"),
                len,
                crc,
            };
            self.bodies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(body);
        }
    }

    /// Every request body read so far (its length and CRC), oldest first.
    pub fn bodies(&self) -> Vec<RecordedBody> {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Every request head recorded so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        // A panicking test thread cannot leave the Vec half-written: push is the only mutation.
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}
