//! [`BoundedApp`]: Pingora's HTTP app behind a connection cap and a bounded read of every
//! request head.
//!
//! Pingora's `ServerApp` for an HTTP app peeks 24 bytes for the h2c preface without a deadline
//! and then reads each head with a per-read timeout only. `BoundedApp` is the `ServerApp` of the
//! proxy listeners instead: it admits the connection (or closes it at once past
//! `max_connections`), reads the head itself ([`super::head`]) and gives the bytes back to the
//! stream, then hands over: HTTP/2 to the app's own `process_new` (which finds the preface
//! already there), HTTP/1 to the app's `process_new_http`, one request at a time, reading each
//! later head itself after at most `idle_timeout` of keep-alive.

use super::coalesce::Coalesce;
use super::head::{read_head, Deadlines, Head};
use super::metrics::{DownstreamMetrics, Rejected};
use super::trim::Trim;
use crate::config::DownstreamLimits;
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Longest time spent writing a refusal (431, 408) and draining what the client still sends.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Most bytes read and dropped after a refusal, so the client sees the answer, not a reset.
const REFUSAL_DRAIN_BYTES: usize = 256 * 1024;

/// The proxy's HTTP app `A`, bounded by [`DownstreamLimits`].
pub struct BoundedApp<A> {
    app: Arc<A>,
    limits: DownstreamLimits,
    /// Detect the h2c preface (gateway.yaml `h2c`); `A` must then have h2c on in its options.
    h2c: bool,
    open: Arc<AtomicUsize>,
    metrics: DownstreamMetrics,
    trim: Arc<Trim>,
}

/// One admitted connection: counted as open until dropped.
struct Slot {
    open: Arc<AtomicUsize>,
    metrics: DownstreamMetrics,
    trim: Arc<Trim>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let now = self.open.fetch_sub(1, Ordering::AcqRel) - 1;
        self.metrics.set_open(now);
        self.trim.closed(now);
    }
}

impl<A> BoundedApp<A> {
    pub fn new(app: A, limits: DownstreamLimits, h2c: bool, metrics: DownstreamMetrics) -> Self {
        BoundedApp {
            app: Arc::new(app),
            limits,
            h2c,
            open: Arc::default(),
            metrics,
            trim: Arc::default(),
        }
    }

    /// Another app behind the same admission: its connections are counted, capped and trimmed
    /// together with this one's (the runtimes of `pingora.runtime: per_core`).
    pub fn sibling<B>(&self, app: B) -> BoundedApp<B> {
        BoundedApp {
            app: Arc::new(app),
            limits: self.limits,
            h2c: self.h2c,
            open: self.open.clone(),
            metrics: self.metrics.clone(),
            trim: self.trim.clone(),
        }
    }

    /// Counts the connection in, or refuses it when `max_connections` are open.
    fn admit(&self) -> Option<Slot> {
        let max = self.limits.max_connections;
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match admitted {
            Ok(before) => {
                self.metrics.set_open(before + 1);
                self.trim.opened(before + 1);
                Some(Slot {
                    open: self.open.clone(),
                    metrics: self.metrics.clone(),
                    trim: self.trim.clone(),
                })
            }
            Err(_) => {
                self.metrics.rejected(Rejected::MaxConnections);
                None
            }
        }
    }

    /// Reads the next head under the limits and puts the bytes back; `None`: close (after
    /// answering and counting a refusal).
    async fn next_head(&self, stream: &mut L4Stream, deadlines: Deadlines) -> Option<bool> {
        let head = read_head(
            stream,
            deadlines,
            self.limits.max_request_header_bytes,
            self.h2c,
        )
        .await;
        match head {
            Head::Http1(bytes) => {
                stream.rewind(&bytes);
                Some(false)
            }
            Head::H2c(bytes) => {
                stream.rewind(&bytes);
                Some(true)
            }
            Head::Closed => None,
            Head::Silent => {
                // A new connection that never sent a byte, or an idle keep-alive one.
                if deadlines.head_by.is_some() {
                    self.metrics.rejected(Rejected::SlowHeaders);
                }
                None
            }
            Head::Slow => {
                self.metrics.rejected(Rejected::SlowHeaders);
                refuse(stream, 408, "Request Timeout").await;
                None
            }
            Head::TooLarge => {
                self.metrics.rejected(Rejected::HeaderTooLarge);
                refuse(stream, 431, "Request Header Fields Too Large").await;
                None
            }
        }
    }
}

/// The concrete TCP/UDS stream behind a listener's `Stream`, to read from and rewind.
/// `Err(Some(_))`: another kind of stream, as it was; `Err(None)`: lost (cannot happen: the
/// type is checked first).
fn into_l4(stream: Stream) -> Result<Box<L4Stream>, Option<Stream>> {
    if !stream.as_any().is::<L4Stream>() {
        return Err(Some(stream));
    }
    stream.into_any().downcast::<L4Stream>().map_err(|_| None)
}

/// Answers `status` with `connection: close` (bounded in time), then drains briefly so the
/// client reads the answer instead of a reset.
async fn refuse(stream: &mut L4Stream, status: u16, reason: &str) {
    let body = format!("{reason}\n");
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let linger = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.flush().await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < REFUSAL_DRAIN_BYTES {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, linger).await;
}

#[async_trait]
impl<A> ServerApp for BoundedApp<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    /// Admits, bounds the first head, then serves HTTP/2 through the app's own loop or
    /// HTTP/1 one request at a time. Always `None`: the keep-alive loop is this function's.
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let _slot = self.admit()?;
        let accepted = Instant::now();
        let mut stream = match into_l4(stream) {
            Ok(s) => s,
            // Not a plain socket (no listener of dyegate's builds one): Pingora's own handling.
            Err(Some(stream)) => return ServerApp::process_new(&self.app, stream, shutdown).await,
            Err(None) => return None,
        };
        let first = Deadlines {
            first_byte_by: accepted + self.limits.header_read_timeout,
            head_within: self.limits.header_read_timeout,
            head_by: Some(accepted + self.limits.header_read_timeout),
        };
        let h2 = self.next_head(&mut stream, first).await?;
        if h2 {
            return ServerApp::process_new(&self.app, stream, shutdown).await;
        }
        // Boxed: the task of a connection waiting for its first head keeps only the head
        // read's state, not the (larger) state of serving requests.
        Box::pin(self.serve_http1(stream, shutdown)).await;
        None
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

impl<A> BoundedApp<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    /// HTTP/1 keep-alive: one request per `process_new_http`, each later head read under
    /// `idle_timeout` (to its first byte) and `header_read_timeout` (from there to its end).
    /// `keepalive_requests` is Pingora's reuse count: the session that may not be reused
    /// answers with `connection: close`.
    async fn serve_http1(self: &Arc<Self>, stream: Box<L4Stream>, shutdown: &ShutdownWatch) {
        let idle_secs = self.limits.idle_timeout.as_secs_f64().ceil().max(1.0) as u64;
        // One Coalesce for the connection's life: its buffer is reused by every response.
        let mut stream = Box::new(Coalesce::new(stream));
        let mut settings: Option<HttpPersistentSettings> = None;
        loop {
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(s) => s.apply_to_session(&mut session),
                None => session.set_keepalive_reuses_remaining(Some(
                    self.limits.keepalive_requests.saturating_sub(1),
                )),
            }
            session.set_keepalive(if *shutdown.borrow() {
                None
            } else {
                Some(idle_secs)
            });
            let Some(reused) = self.app.process_new_http(session, shutdown).await else {
                return;
            };
            let (next, persistent) = reused.consume();
            let Ok(mut coalesce) = next.into_any().downcast::<Coalesce>() else {
                return;
            };
            if coalesce.release().await.is_err() {
                return;
            }
            let now = Instant::now();
            let later = Deadlines {
                first_byte_by: now + self.limits.idle_timeout,
                head_within: self.limits.header_read_timeout,
                head_by: None,
            };
            if self.next_head(coalesce.l4_mut(), later).await != Some(false) {
                // Closed, refused, or an h2 preface in the middle of HTTP/1: close.
                return;
            }
            stream = coalesce;
            settings = persistent;
        }
    }
}
