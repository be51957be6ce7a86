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
//!
//! On an HTTPS listener (gateway.yaml `tls:`) the listener hands over a plain socket too: the
//! TLS handshake is done here, after admission and under `tls.handshake_timeout_ms`
//! ([`TlsAcceptor`]), and the head is then read from the decrypted stream ([`Replay`]) under the
//! same limits. ALPN h2 goes to the app's HTTP/2 loop once its preface has arrived.
//!
//! On a PROXY protocol listener the header comes first of all, right after admission, before
//! the TLS handshake and the first head, within `limits.header_read_timeout_ms` of the accept
//! ([`super::proxy_protocol`]).

use super::coalesce::Coalesce;
use super::head::{Deadlines, Head, HeadReader};
use super::metrics::{DownstreamMetrics, Rejected};
use super::proxy_protocol::{self, ProxyListeners, Refused};
use super::replay::Replay;
use super::trim::Trim;
use crate::config::DownstreamLimits;
use crate::tls::TlsAcceptor;
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::TlsStream;
use pingora::protocols::{Ssl, Stream, ALPN, IO};
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Longest time spent writing a refusal (431, 408) and draining what the client still sends.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Most bytes read and dropped after a refusal, so the client sees the answer, not a reset.
const REFUSAL_DRAIN_BYTES: usize = 256 * 1024;

/// The limits a bounded app reads, swapped whole when gateway.yaml's live ones change.
pub type LiveLimits = Arc<arc_swap::ArcSwap<DownstreamLimits>>;

/// The proxy's HTTP app `A`, bounded by [`DownstreamLimits`].
pub struct BoundedApp<A> {
    app: Arc<A>,
    /// Read once per connection (and head): a SIGHUP can change some of them (`config::settings::live`).
    limits: LiveLimits,
    /// Detect the h2c preface (gateway.yaml `h2c`); `A` must then have h2c on in its options.
    h2c: bool,
    open: Arc<AtomicUsize>,
    metrics: DownstreamMetrics,
    trim: Arc<Trim>,
    /// `Some`: an HTTPS listener's app; every connection starts with a TLS handshake.
    tls: Option<Arc<TlsAcceptor>>,
    /// The listeners whose connections start with a PROXY protocol header (of every service).
    proxy: Arc<ProxyListeners>,
}

/// A stream whose bytes already read can be given back (the head, once read).
pub trait Rewind: IO + 'static {
    fn rewind(&mut self, bytes: &[u8]);
}

impl Rewind for L4Stream {
    fn rewind(&mut self, bytes: &[u8]) {
        L4Stream::rewind(self, bytes)
    }
}

impl Rewind for Replay<TlsStream<L4Stream>> {
    fn rewind(&mut self, bytes: &[u8]) {
        Replay::rewind(self, bytes)
    }
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
    pub fn new(app: A, limits: LiveLimits, h2c: bool, metrics: DownstreamMetrics) -> Self {
        BoundedApp {
            app: Arc::new(app),
            limits,
            h2c,
            open: Arc::default(),
            metrics,
            trim: Arc::default(),
            tls: None,
            proxy: Arc::default(),
        }
    }

    /// The PROXY protocol listeners, for this app and the ones made from it afterwards.
    pub fn with_proxy_protocol(mut self, proxy: ProxyListeners) -> Self {
        self.proxy = Arc::new(proxy);
        self
    }

    /// The same app for HTTPS listeners: the TLS handshake first. Shares the connection cap
    /// and its count (one `max_connections` over plain and TLS listeners) and the metrics.
    pub fn with_tls(&self, tls: Arc<TlsAcceptor>) -> Self {
        BoundedApp {
            app: self.app.clone(),
            limits: self.limits.clone(),
            h2c: false,
            open: self.open.clone(),
            metrics: self.metrics.clone(),
            trim: self.trim.clone(),
            tls: Some(tls),
            proxy: self.proxy.clone(),
        }
    }

    /// Another app behind the same admission: its connections are counted, capped and trimmed
    /// together with this one's (the runtimes of `pingora.runtime: per_core`).
    pub fn sibling<B>(&self, app: B) -> BoundedApp<B> {
        BoundedApp {
            app: Arc::new(app),
            limits: self.limits.clone(),
            h2c: self.h2c,
            open: self.open.clone(),
            metrics: self.metrics.clone(),
            trim: self.trim.clone(),
            tls: self.tls.clone(),
            proxy: self.proxy.clone(),
        }
    }

    fn limits(&self) -> DownstreamLimits {
        **self.limits.load()
    }

    /// Counts the connection in, or refuses it when `max_connections` are open.
    fn admit(&self) -> Option<Slot> {
        let max = self.limits().max_connections;
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

    /// Takes the PROXY protocol header of a connection to one of its listeners (none
    /// elsewhere); `false`: refused (counted), close.
    async fn proxy_header(&self, stream: &mut L4Stream) -> bool {
        let Some(listener) = self.proxy.of_stream(stream) else {
            return true;
        };
        let deadline = Instant::now() + self.limits().header_read_timeout;
        let refused = match proxy_protocol::accept(listener, stream, deadline).await {
            Ok(()) => return true,
            Err(Refused::Source) => Some(Rejected::ProxyProtocolSource),
            Err(Refused::Header) => Some(Rejected::ProxyProtocol),
            Err(Refused::Slow) => Some(Rejected::SlowHeaders),
            Err(Refused::Closed) => None,
        };
        if let Some(reason) = refused {
            log::debug!(
                "PROXY protocol listener {}: connection closed ({})",
                listener.addr,
                reason.as_str()
            );
            self.metrics.rejected(reason);
        }
        false
    }

    /// Reads the next head under the limits (at most `max` bytes) and puts the bytes back;
    /// `None`: close (after answering and counting a refusal). `Some(true)`: the HTTP/2
    /// preface (looked for when `h2`).
    async fn next_head<S: Rewind>(
        &self,
        reader: &mut HeadReader,
        stream: &mut S,
        (deadlines, max): (Deadlines, usize),
        h2: bool,
    ) -> Option<bool> {
        match reader.read(stream, deadlines, max, h2).await {
            Head::Http1 => {
                stream.rewind(reader.bytes());
                Some(false)
            }
            Head::H2c => {
                stream.rewind(reader.bytes());
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

/// The concrete stream behind a `Stream` (the TCP/UDS stream of a listener, or the TLS stream
/// dyegate made of it), to read from and rewind. `Err(Some(_))`: another kind of stream, as it
/// was; `Err(None)`: lost (cannot happen: the type is checked first).
fn into_concrete<S: IO + 'static>(stream: Stream) -> Result<Box<S>, Option<Stream>> {
    if !stream.as_any().is::<S>() {
        return Err(Some(stream));
    }
    stream.into_any().downcast::<S>().map_err(|_| None)
}

/// Answers `status` with `connection: close` (bounded in time), then drains briefly so the
/// client reads the answer instead of a reset.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, status: u16, reason: &str) {
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
        let mut stream = match into_concrete::<L4Stream>(stream) {
            Ok(s) => s,
            // Not a plain socket (no listener of dyegate's builds one): Pingora's own handling.
            Err(Some(stream)) => return ServerApp::process_new(&self.app, stream, shutdown).await,
            Err(None) => return None,
        };
        if !self.proxy_header(&mut stream).await {
            return None;
        }
        if let Some(tls) = &self.tls {
            let tls = tls.handshake(*stream).await?;
            return Box::pin(self.serve_tls(tls, shutdown)).await;
        }
        let (mut reader, first) = self.first_head();
        let h2 = self
            .next_head(&mut reader, stream.as_mut(), first, self.h2c)
            .await?;
        if h2 {
            return ServerApp::process_new(&self.app, stream, shutdown).await;
        }
        // Boxed: the task of a connection waiting for its first head keeps only the head
        // read's state, not the (larger) state of serving requests.
        Box::pin(self.serve_http1(reader, stream, shutdown)).await;
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
    /// The head reader of a new connection and the deadlines of its first head, from now
    /// (accept, or the end of the TLS handshake).
    fn first_head(&self) -> (HeadReader, (Deadlines, usize)) {
        let now = Instant::now();
        let limits = self.limits();
        let deadlines = Deadlines {
            first_byte_by: now + limits.header_read_timeout,
            head_within: limits.header_read_timeout,
            head_by: Some(now + limits.header_read_timeout),
        };
        let reader = HeadReader::new(deadlines.first_byte_by);
        (reader, (deadlines, limits.max_request_header_bytes))
    }

    /// A connection of an HTTPS listener after its handshake: ALPN h2 (once the preface came)
    /// to the app's HTTP/2 loop, anything else as HTTP/1.
    async fn serve_tls(
        self: &Arc<Self>,
        tls: TlsStream<L4Stream>,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let alpn_h2 = matches!(tls.selected_alpn_proto(), Some(ALPN::H2));
        let mut stream = Box::new(Replay::new(tls));
        let (mut reader, first) = self.first_head();
        let h2 = self
            .next_head(&mut reader, stream.as_mut(), first, alpn_h2)
            .await?;
        match (alpn_h2, h2) {
            (true, true) => ServerApp::process_new(&self.app, stream, shutdown).await,
            (false, false) => {
                self.serve_http1(reader, stream, shutdown).await;
                None
            }
            // h2 agreed but HTTP/1 sent, or the reverse: not a client to serve.
            _ => None,
        }
    }

    /// HTTP/1 keep-alive: one request per `process_new_http`, each later head read under
    /// `idle_timeout` (to its first byte) and `header_read_timeout` (from there to its end).
    /// `keepalive_requests` is Pingora's reuse count: the session that may not be reused
    /// answers with `connection: close`.
    async fn serve_http1<S: Rewind>(
        self: &Arc<Self>,
        mut reader: HeadReader,
        stream: Box<S>,
        shutdown: &ShutdownWatch,
    ) {
        let idle_secs = self.limits().idle_timeout.as_secs_f64().ceil().max(1.0) as u64;
        // One Coalesce for the connection's life: its buffer is reused by every response.
        let mut stream = Box::new(Coalesce::new(stream));
        let mut settings: Option<HttpPersistentSettings> = None;
        loop {
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(s) => s.apply_to_session(&mut session),
                None => session.set_keepalive_reuses_remaining(Some(
                    self.limits().keepalive_requests.saturating_sub(1),
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
            let Ok(mut coalesce) = into_concrete::<Coalesce<S>>(next) else {
                return;
            };
            if coalesce.release().await.is_err() {
                return;
            }
            // The limits once per request (a SIGHUP may have changed them).
            let limits = self.limits();
            let later = Deadlines {
                first_byte_by: Instant::now() + limits.idle_timeout,
                head_within: limits.header_read_timeout,
                head_by: None,
            };
            let max = limits.max_request_header_bytes;
            let head = self.next_head(&mut reader, coalesce.inner_mut(), (later, max), self.h2c);
            if head.await != Some(false) {
                // Closed, refused, or an h2 preface in the middle of HTTP/1: close.
                return;
            }
            stream = coalesce;
            settings = persistent;
        }
    }
}
