//! [`Replay`]: a decrypted stream that can be given back bytes already read, as Pingora's
//! plain `l4::Stream::rewind` can. The request head of a TLS connection is read by
//! [`super::head`] before Pingora parses it, exactly as on a plain connection; this is where
//! those bytes wait for Pingora's parser.

use async_trait::async_trait;
use pingora::protocols::{Peek, Shutdown};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `S` with bytes to serve before its own.
#[derive(Debug)]
pub struct Replay<S> {
    inner: S,
    pending: Vec<u8>,
    at: usize,
}

impl<S> Replay<S> {
    pub fn new(inner: S) -> Self {
        Replay {
            inner,
            pending: Vec::new(),
            at: 0,
        }
    }

    /// The next reads return `bytes` first (before anything given back earlier and not read).
    pub fn rewind(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut pending = Vec::with_capacity(bytes.len() + self.pending.len() - self.at);
        pending.extend_from_slice(bytes);
        pending.extend_from_slice(&self.pending[self.at..]);
        self.pending = pending;
        self.at = 0;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.pending.len() {
            let n = buf.remaining().min(this.pending.len() - this.at);
            buf.put_slice(&this.pending[this.at..this.at + n]);
            this.at += n;
            if this.at == this.pending.len() {
                this.pending = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl<S: Shutdown + Send> Shutdown for Replay<S> {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

super::delegate::delegate_digests!(Replay);

/// No peeking: the head is read and given back instead.
#[async_trait]
impl<S: Send> Peek for Replay<S> {}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn given_back_bytes_come_first_then_the_stream() {
        let inner: &[u8] = b" world";
        let mut r = Replay::new(inner);
        r.rewind(b"lo");
        r.rewind(b"hel");
        let mut out = String::new();
        r.read_to_string(&mut out).await.expect("read");
        assert_eq!(out, "hello world");
    }
}
