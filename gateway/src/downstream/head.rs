//! Reading a request head under a deadline and a size limit, before Pingora parses it.
//!
//! Pingora 0.9 reads a request head with a per-read timeout only (a client that sends one byte
//! per minute keeps its connection forever) and, with h2c on, first waits for 24 bytes (the
//! HTTP/2 preface) with no deadline at all. This module reads the head itself: the bytes are
//! then handed back to Pingora's parser (see [`super::app`]), which finds them already there.

use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{Instant, Sleep};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// A complete HTTP/1 head (and possibly more: body, pipelined bytes): all the bytes read
    /// are in [`HeadReader::bytes`].
    Http1,
    /// The HTTP/2 preface (h2c prior knowledge): all the bytes read are in
    /// [`HeadReader::bytes`].
    H2c,
    /// The peer closed (or the read failed) before a complete head; nothing to answer.
    Closed,
    /// No byte arrived by `first_byte_by`.
    Silent,
    /// Some bytes, but not the whole head, by the deadline.
    Slow,
    /// More than the limit without the end of the head.
    TooLarge,
}

/// A buffer that grew past this for a large head is not kept for the connection's next one.
const KEPT_CAPACITY: usize = 8 * 1024;

/// Reads the request heads of one connection. Its buffer and its deadline timer are kept from
/// one head to the next: a keep-alive request allocates nothing for its head, and moving the
/// deadline later (the common case: the next idle deadline is after the last one) is one atomic
/// update of the already registered timer in tokio, not a registration and a removal per head.
/// Only a deadline earlier than the armed one (the head deadline after the first bytes of a
/// head that takes more than one read) registers it again.
pub struct HeadReader {
    buf: Vec<u8>,
    timer: Pin<Box<Sleep>>,
}

impl HeadReader {
    /// A reader whose timer is first armed at `first_deadline` (it is re-armed by every read).
    pub fn new(first_deadline: Instant) -> Self {
        HeadReader {
            buf: Vec::new(),
            timer: Box::pin(tokio::time::sleep_until(first_deadline)),
        }
    }

    /// The bytes the last [`HeadReader::read`] read.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Reads until the end of a request head (an empty line), the h2c preface when `h2c`, the
    /// deadline, or `max_bytes` without an end. The bytes read stay in [`HeadReader::bytes`]
    /// until the next read.
    pub async fn read<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        deadlines: Deadlines,
        max_bytes: usize,
        h2c: bool,
    ) -> Head {
        if self.buf.capacity() > KEPT_CAPACITY {
            self.buf = Vec::new();
        }
        self.buf.clear();
        let mut deadline = deadlines.first_byte_by;
        let mut scan = Scan::default();
        loop {
            // Small until bytes come (an idle connection costs little; most heads fit in one
            // read, as the socket is read without a buffer of Pingora's), then at most one read
            // past the limit.
            let buf = &mut self.buf;
            let room = if buf.is_empty() { 2048 } else { 4096 };
            buf.reserve(room.min(max_bytes + 1 - buf.len().min(max_bytes)).max(1));
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            let first_bytes = buf.is_empty();
            let read = tokio::select! {
                biased;
                read = stream.read_buf(buf) => Some(read),
                () = &mut self.timer => None,
            };
            match read {
                None if self.buf.is_empty() => return Head::Silent,
                None => return Head::Slow,
                Some(Err(_)) | Some(Ok(0)) => return Head::Closed,
                Some(Ok(_)) => {}
            }
            let buf = &self.buf;
            if h2c {
                let n = buf.len().min(H2_PREFACE.len());
                if buf[..n] == H2_PREFACE[..n] {
                    if n == H2_PREFACE.len() {
                        return Head::H2c;
                    }
                    // A prefix of the preface: wait for the rest (it also looks like an h1
                    // head).
                    if first_bytes {
                        deadline = head_deadline(deadlines);
                    }
                    continue;
                }
            }
            match scan.end(buf) {
                Some(end) if end <= max_bytes => return Head::Http1,
                Some(_) => return Head::TooLarge,
                None if buf.len() > max_bytes => return Head::TooLarge,
                None if first_bytes => deadline = head_deadline(deadlines),
                None => {}
            }
        }
    }
}

/// The deadline of the rest of a head whose first bytes came now.
fn head_deadline(deadlines: Deadlines) -> Instant {
    let by = Instant::now() + deadlines.head_within;
    deadlines.head_by.map_or(by, |cap| cap.min(by))
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

    /// What a new reader makes of a stream, and the bytes it read.
    async fn read_head<S: AsyncRead + Unpin>(
        stream: &mut S,
        d: Deadlines,
        max: usize,
        h2c: bool,
    ) -> (Head, Vec<u8>) {
        let mut reader = HeadReader::new(d.first_byte_by);
        let head = reader.read(stream, d, max, h2c).await;
        (head, reader.bytes().to_vec())
    }

    async fn head_of(chunks: &[&[u8]], max: usize, h2c: bool) -> Head {
        head_and_bytes(chunks, max, h2c).await.0
    }

    async fn head_and_bytes(chunks: &[&[u8]], max: usize, h2c: bool) -> (Head, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        for c in chunks {
            client.write_all(c).await.expect("write");
        }
        read_head(&mut server, deadlines(200), max, h2c).await
    }

    #[tokio::test]
    async fn a_short_http10_request_is_complete() {
        let req: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
        assert_eq!(
            head_and_bytes(&[req], 1024, true).await,
            (Head::Http1, req.to_vec())
        );
    }

    #[tokio::test]
    async fn bare_lf_and_leading_empty_lines() {
        let req: &[u8] = b"\r\n\nGET / HTTP/1.1\nHost: a\n\n";
        assert_eq!(
            head_and_bytes(&[req], 1024, true).await,
            (Head::Http1, req.to_vec())
        );
        let req: &[u8] = b"GET / HTTP/1.1\r\nHost: a\n\r\nbody";
        assert_eq!(
            head_and_bytes(&[req], 1024, true).await,
            (Head::Http1, req.to_vec())
        );
    }

    #[tokio::test]
    async fn the_preface_is_h2c_only_when_enabled() {
        assert_eq!(
            head_and_bytes(&[H2_PREFACE], 1024, true).await,
            (Head::H2c, H2_PREFACE.to_vec())
        );
        // Without h2c its first 18 bytes are an (invalid) HTTP/1 head, for Pingora to refuse.
        assert_eq!(head_of(&[H2_PREFACE], 1024, false).await, Head::Http1);
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
        assert_eq!(head_of(&[big.as_bytes()], 4096, true).await, Head::Http1);
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
            (Head::Http1, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec())
        );
        drop(task.await);
    }

    #[tokio::test]
    async fn one_reader_reads_head_after_head_under_each_ones_deadline() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let mut reader = HeadReader::new(Instant::now());
        let first: &[u8] = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n";
        client.write_all(first).await.expect("write");
        let head = reader
            .read(&mut server, deadlines(5_000), 1024, false)
            .await;
        assert_eq!((head, reader.bytes()), (Head::Http1, first));

        // An earlier deadline than the armed one (5 s) is kept: silence ends at ~100 ms.
        let t = Instant::now();
        let head = reader.read(&mut server, deadlines(100), 1024, false).await;
        assert_eq!(head, Head::Silent);
        assert!(reader.bytes().is_empty(), "the last head's bytes are gone");
        assert!(
            t.elapsed() < Duration::from_millis(2_000),
            "{:?}",
            t.elapsed()
        );

        // A later one after the timer fired: the next head is read, not timed out.
        let second: &[u8] = b"GET /second HTTP/1.1\r\n\r\n";
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            client.write_all(second).await.expect("write");
            client
        });
        let head = reader
            .read(&mut server, deadlines(2_000), 1024, false)
            .await;
        assert_eq!((head, reader.bytes()), (Head::Http1, second));
        let _client = late.await.expect("writer");
    }

    #[tokio::test]
    async fn a_large_heads_buffer_is_not_kept() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let mut reader = HeadReader::new(Instant::now());
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(20_000));
        client.write_all(big.as_bytes()).await.expect("write");
        let head = reader
            .read(&mut server, deadlines(2_000), 32_768, false)
            .await;
        assert_eq!((head, reader.bytes()), (Head::Http1, big.as_bytes()));
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let head = reader
            .read(&mut server, deadlines(2_000), 32_768, false)
            .await;
        assert_eq!(head, Head::Http1);
        assert!(
            reader.buf.capacity() <= KEPT_CAPACITY,
            "{}",
            reader.buf.capacity()
        );
    }

    #[tokio::test]
    async fn a_closed_peer_is_closed() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert_eq!(
            read_head(&mut server, deadlines(200), 1024, true).await.0,
            Head::Closed
        );
    }
}
