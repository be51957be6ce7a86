//! Reading a request head under a deadline and a size limit, before Pingora parses it.
//!
//! Pingora 0.9 reads a request head with a per-read timeout only (a client that sends one byte
//! per minute keeps its connection forever) and, with h2c on, first waits for 24 bytes (the
//! HTTP/2 preface) with no deadline at all. This module reads the head itself: the bytes are
//! then handed back to Pingora's parser (see [`super::app`]), which finds them already there.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long the head may take.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// The first byte must arrive by then (idle keep-alive, or a silent new connection).
    pub first_byte_by: Instant,
    /// Once it has, the rest of the head must arrive within this long...
    pub head_within: Duration,
    /// ...and in any case by then (a new connection: accept + header_read_timeout).
    pub head_by: Option<Instant>,
}

/// What came in.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// A complete HTTP/1 head (and possibly more: body, pipelined bytes); all bytes read.
    Http1(Vec<u8>),
    /// The HTTP/2 preface (h2c prior knowledge); all bytes read.
    H2c(Vec<u8>),
    /// The peer closed (or the read failed) before a complete head; nothing to answer.
    Closed,
    /// No byte arrived by `first_byte_by`.
    Silent,
    /// Some bytes, but not the whole head, by the deadline.
    Slow,
    /// More than the limit without the end of the head.
    TooLarge,
}

/// Reads until the end of a request head (an empty line), the h2c preface when `h2c`, the
/// deadline, or `max_bytes` without an end.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadlines: Deadlines,
    max_bytes: usize,
    h2c: bool,
) -> Head {
    let mut buf: Vec<u8> = Vec::new();
    let mut deadline = deadlines.first_byte_by;
    let mut scan = Scan::default();
    loop {
        // Small until bytes come (an idle connection costs little; most heads fit in one
        // read, as the socket is read without a buffer of Pingora's), then at most one read
        // past the limit.
        let room = if buf.is_empty() { 2048 } else { 4096 };
        buf.reserve(room.min(max_bytes + 1 - buf.len().min(max_bytes)).max(1));
        let read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await;
        match read {
            Err(_) if buf.is_empty() => return Head::Silent,
            Err(_) => return Head::Slow,
            Ok(Err(_)) | Ok(Ok(0)) => return Head::Closed,
            Ok(Ok(n)) => {
                if buf.len() == n {
                    let by = Instant::now() + deadlines.head_within;
                    deadline = deadlines.head_by.map_or(by, |cap| cap.min(by));
                }
            }
        }
        if h2c {
            let n = buf.len().min(H2_PREFACE.len());
            if buf[..n] == H2_PREFACE[..n] {
                if n == H2_PREFACE.len() {
                    return Head::H2c(buf);
                }
                // A prefix of the preface: wait for the rest (it also looks like an h1 head).
                continue;
            }
        }
        match scan.end(&buf) {
            Some(end) if end <= max_bytes => return Head::Http1(buf),
            Some(_) => return Head::TooLarge,
            None if buf.len() > max_bytes => return Head::TooLarge,
            None => {}
        }
    }
}

/// Finds the end of a head across reads without scanning a byte twice (a slow client sending
/// one byte per read costs linear time, not quadratic).
#[derive(Debug, Default)]
struct Scan {
    /// Where the request line starts: leading empty lines are skipped (RFC 9112 §2.2).
    start: Option<usize>,
    /// Bytes already looked at.
    done: usize,
}

impl Scan {
    /// The length of the head (through its empty line) when `buf` holds all of it. Lines may
    /// end in CRLF or a bare LF, as Pingora's parser (httparse) accepts both.
    fn end(&mut self, buf: &[u8]) -> Option<usize> {
        let start = match self.start {
            Some(s) => s,
            None => {
                let s = buf.iter().position(|b| !matches!(b, b'\r' | b'\n'))?;
                self.start = Some(s);
                self.done = s;
                s
            }
        };
        // An end is "\n\n" or "\n\r\n": look back two bytes past what was scanned.
        let from = self.done.saturating_sub(2).max(start);
        let found = buf[from..].windows(2).enumerate().find_map(|(i, w)| {
            let at = from + i;
            match w {
                [b'\n', b'\n'] => Some(at + 2),
                [b'\n', b'\r'] if buf.get(at + 2) == Some(&b'\n') => Some(at + 3),
                _ => None,
            }
        });
        if found.is_none() {
            self.done = buf.len();
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn deadlines(ms: u64) -> Deadlines {
        let now = Instant::now();
        Deadlines {
            first_byte_by: now + Duration::from_millis(ms),
            head_within: Duration::from_millis(ms),
            head_by: Some(now + Duration::from_millis(ms)),
        }
    }

    async fn head_of(chunks: &[&[u8]], max: usize, h2c: bool) -> Head {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        for c in chunks {
            client.write_all(c).await.expect("write");
        }
        read_head(&mut server, deadlines(200), max, h2c).await
    }

    #[tokio::test]
    async fn a_short_http10_request_is_complete() {
        let req: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
        assert_eq!(head_of(&[req], 1024, true).await, Head::Http1(req.to_vec()));
    }

    #[tokio::test]
    async fn bare_lf_and_leading_empty_lines() {
        let req: &[u8] = b"\r\n\nGET / HTTP/1.1\nHost: a\n\n";
        assert_eq!(head_of(&[req], 1024, true).await, Head::Http1(req.to_vec()));
        let req: &[u8] = b"GET / HTTP/1.1\r\nHost: a\n\r\nbody";
        assert_eq!(head_of(&[req], 1024, true).await, Head::Http1(req.to_vec()));
    }

    #[tokio::test]
    async fn the_preface_is_h2c_only_when_enabled() {
        assert_eq!(
            head_of(&[H2_PREFACE], 1024, true).await,
            Head::H2c(H2_PREFACE.to_vec())
        );
        // Without h2c its first 18 bytes are an (invalid) HTTP/1 head, for Pingora to refuse.
        assert!(matches!(
            head_of(&[H2_PREFACE], 1024, false).await,
            Head::Http1(_)
        ));
        // A prefix of the preface waits for more, then times out.
        assert_eq!(head_of(&[&H2_PREFACE[..18]], 1024, true).await, Head::Slow);
    }

    #[tokio::test]
    async fn silence_slowness_and_size() {
        assert_eq!(head_of(&[], 1024, true).await, Head::Silent);
        assert_eq!(
            head_of(&[b"GET / HTTP/1.1\r\n"], 1024, true).await,
            Head::Slow
        );
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(head_of(&[big.as_bytes()], 1024, true).await, Head::TooLarge);
        assert!(matches!(
            head_of(&[big.as_bytes()], 4096, true).await,
            Head::Http1(_)
        ));
        let endless = "a".repeat(5000);
        assert_eq!(
            head_of(&[endless.as_bytes()], 1024, true).await,
            Head::TooLarge
        );
    }

    #[tokio::test]
    async fn the_end_is_found_across_reads() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(async move {
            for b in b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" {
                client.write_all(&[*b]).await.expect("write");
                tokio::task::yield_now().await;
            }
            client
        });
        let head = read_head(&mut server, deadlines(2000), 1024, true).await;
        assert_eq!(
            head,
            Head::Http1(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec())
        );
        drop(task.await);
    }

    #[tokio::test]
    async fn a_closed_peer_is_closed() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert_eq!(
            read_head(&mut server, deadlines(200), 1024, true).await,
            Head::Closed
        );
    }
}
