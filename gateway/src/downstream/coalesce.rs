//! [`Coalesce`]: the downstream HTTP/1 stream that sends a small answer's head and body in one
//! write.
//!
//! The proxy listeners have no write buffer (docs/pingora-upstream.md §5: Pingora flushes a
//! Content-Length body only when it is complete, so a buffer held back the first bytes of a
//! stalled body). Without one, Pingora writes the response head, then the body: two `sendto`
//! per answer where a buffered stream makes one. `Coalesce` holds back exactly one write, the
//! head, when the proxy asks for it ([`hold_head`], from `response_filter`, for an answer with a
//! small Content-Length body), and sends it together with the next write (`writev`): the first
//! body bytes. A flush, a shutdown or a read sends a held head at once, so nothing waits longer
//! than until Pingora's next write or flush; in particular the first bytes of a stalled body
//! still reach the client with the head (tests/traffic/streaming.rs).

use super::replay::Replay;
use async_trait::async_trait;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::TlsStream;
use pingora::protocols::{Peek, Shutdown, IO};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Largest Content-Length body whose head is held for it: a small answer, whose body is
/// normally read from the upstream together with its head.
pub const MAX_HELD_BODY: u64 = 64 * 1024;

/// Bytes of held-head buffer a connection keeps between requests.
const KEPT_CAPACITY: usize = 4096;

/// Most slices passed to one `writev` (the held head and the caller's slices).
const MAX_SLICES: usize = 16;

/// A downstream HTTP/1 connection's stream; see the module documentation.
#[derive(Debug)]
pub struct Coalesce<S> {
    inner: Box<S>,
    /// Hold the next write (set from `response_filter` through [`hold_head`]).
    hold_next: AtomicBool,
    /// A held head, not sent yet.
    held: Vec<u8>,
}

impl<S: IO> Coalesce<S> {
    pub fn new(inner: Box<S>) -> Self {
        Coalesce {
            inner,
            hold_next: AtomicBool::new(false),
            held: Vec::new(),
        }
    }

    /// The stream under this one, for reading the next request head: call [`release`] first,
    /// so that nothing written before is still held.
    ///
    /// [`release`]: Coalesce::release
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Sends what is held (if anything) and forgets a hold asked for and not used: between two
    /// requests of a keep-alive connection.
    pub async fn release(&mut self) -> io::Result<()> {
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.inner.write_all(&held).await?;
        }
        self.hold_next.store(false, Ordering::Relaxed);
        if self.held.capacity() > KEPT_CAPACITY {
            // An unusually large head: not kept for the life of an idle connection.
            self.held = Vec::new();
        }
        Ok(())
    }

    /// Writes held bytes until none are left.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut *self.inner).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..n);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes the held bytes and then `bufs` in one `writev` where possible; returns how many
    /// bytes of `bufs` were written (0 only when `bufs` is empty).
    fn poll_write_after_held(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.held.is_empty() {
                return Pin::new(&mut *self.inner).poll_write_vectored(cx, bufs);
            }
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            slices[0] = IoSlice::new(&self.held);
            let mut used = 1;
            for b in bufs.iter().filter(|b| !b.is_empty()).take(MAX_SLICES - 1) {
                slices[used] = IoSlice::new(b);
                used += 1;
            }
            let n = ready!(Pin::new(&mut *self.inner).poll_write_vectored(cx, &slices[..used]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let held = self.held.len();
            if n < held {
                self.held.drain(..n);
                continue;
            }
            self.held.clear();
            if n > held || bufs.iter().all(|b| b.is_empty()) {
                return Poll::Ready(Ok(n - held));
            }
        }
    }
}

/// Asks the HTTP/1 connection under `stream` to hold its next write (the response head about to
/// be written) and send it with the write after (the first body bytes). No effect on any
/// other stream.
pub fn hold_head(stream: &pingora::protocols::Stream) {
    let any = stream.as_any();
    let hold = if let Some(c) = any.downcast_ref::<Coalesce<L4Stream>>() {
        &c.hold_next
    } else if let Some(c) = any.downcast_ref::<Coalesce<Replay<TlsStream<L4Stream>>>>() {
        &c.hold_next
    } else {
        return;
    };
    hold.store(true, Ordering::Relaxed);
}

impl<S: IO> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.is_empty() && !buf.is_empty() && this.hold_next.swap(false, Ordering::Relaxed)
        {
            this.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        this.poll_write_after_held(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_after_held(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        Pin::new(&mut *this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        Pin::new(&mut *this.inner).poll_shutdown(cx)
    }
}

impl<S: IO> AsyncRead for Coalesce<S> {
    /// A held head goes out before the connection waits for the client.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        Pin::new(&mut *this.inner).poll_read(cx, buf)
    }
}

#[async_trait]
impl<S: IO> Shutdown for Coalesce<S> {
    async fn shutdown(&mut self) {
        if self.release().await.is_ok() {
            Shutdown::shutdown(&mut *self.inner).await;
        }
    }
}

super::delegate::delegate_digests!(Coalesce);

#[async_trait]
impl<S: IO> Peek for Coalesce<S> {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.release().await?;
        self.inner.try_peek(buf).await
    }
}

/// Whether the head of `response` (to a `method` request) is worth holding for its body: a
/// Content-Length body of 1 to [`MAX_HELD_BODY`] bytes. Not for answers without a body (HEAD,
/// 1xx, 204, 304: Pingora flushes those at once anyway), chunked or close-delimited bodies, or
/// large ones.
pub fn worth_holding(method: &http::Method, response: &pingora::http::ResponseHeader) -> bool {
    let status = response.status.as_u16();
    if method == http::Method::HEAD || status < 200 || status == 204 || status == 304 {
        return false;
    }
    let headers = &response.headers;
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return false;
    }
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    match (lengths.next(), lengths.next()) {
        (Some(v), None) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| (1..=MAX_HELD_BODY).contains(&n)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::http::ResponseHeader;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A real loopback connection: the server side wrapped, the client side to read from.
    async fn pair() -> (pingora::protocols::Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let server = Box::new(L4Stream::from(server));
        (Box::new(Coalesce::new(server)), client)
    }

    /// What the client can read within `wait`.
    async fn read_for(client: &mut TcpStream, wait: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(Ok(n)) = tokio::time::timeout(wait, client.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[tokio::test]
    async fn a_held_head_leaves_with_the_first_body_bytes() {
        let (mut server, mut client) = pair().await;
        hold_head(&server);
        server.write_all(b"HEAD").await.expect("write head");
        assert!(read_for(&mut client, Duration::from_millis(100))
            .await
            .is_empty());
        server.write_all(b"body").await.expect("write body");
        assert_eq!(
            read_for(&mut client, Duration::from_millis(200)).await,
            b"HEADbody"
        );
    }

    #[tokio::test]
    async fn a_flush_sends_a_held_head_and_unasked_writes_go_straight_out() {
        let (mut server, mut client) = pair().await;
        server.write_all(b"plain").await.expect("write");
        assert_eq!(
            read_for(&mut client, Duration::from_millis(200)).await,
            b"plain"
        );
        hold_head(&server);
        server.write_all(b"HEAD").await.expect("write head");
        server.flush().await.expect("flush");
        assert_eq!(
            read_for(&mut client, Duration::from_millis(200)).await,
            b"HEAD"
        );
    }

    #[test]
    fn only_small_content_length_answers_are_held() {
        let answer = |status: u16, headers: &[(&str, &str)]| {
            let mut r = ResponseHeader::build(status, None).expect("header");
            for (k, v) in headers {
                r.append_header(k.to_string(), *v).expect("append");
            }
            r
        };
        let get = http::Method::GET;
        assert!(worth_holding(
            &get,
            &answer(200, &[("content-length", "7")])
        ));
        assert!(worth_holding(
            &get,
            &answer(404, &[("content-length", "65536")])
        ));
        assert!(!worth_holding(
            &get,
            &answer(200, &[("content-length", "65537")])
        ));
        assert!(!worth_holding(
            &get,
            &answer(200, &[("content-length", "0")])
        ));
        assert!(!worth_holding(&get, &answer(200, &[])));
        assert!(!worth_holding(
            &get,
            &answer(200, &[("transfer-encoding", "chunked")])
        ));
        assert!(!worth_holding(
            &get,
            &answer(204, &[("content-length", "7")])
        ));
        assert!(!worth_holding(
            &get,
            &answer(304, &[("content-length", "7")])
        ));
        assert!(!worth_holding(
            &http::Method::HEAD,
            &answer(200, &[("content-length", "7")])
        ));
        let two = answer(200, &[("content-length", "7"), ("content-length", "7")]);
        assert!(!worth_holding(&get, &two));
    }
}
