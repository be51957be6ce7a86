//! Raw TCP on both sides of the gateway, for what an HTTP library would smooth over: a client
//! that writes exactly the bytes given and reads what comes back, and an upstream that records
//! exactly the bytes the gateway sent it.
//!
//! ```no_run
//! use dyegate_suite::raw::{RawClient, RawUpstream};
//! # async fn demo(gw: std::net::SocketAddr) {
//! let up = RawUpstream::start("stable");
//! let mut c = RawClient::connect(gw).await;
//! c.send(b"GET / HTTP/1.0\r\n\r\n").await;
//! let answer = c.read_to_close(std::time::Duration::from_secs(5)).await;
//! assert!(answer.text().starts_with("HTTP/1.1 200"));
//! # }
//! ```

use crate::server_thread::{accept_each, ServerThread};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client connection that sends bytes as given.
pub struct RawClient {
    stream: TcpStream,
}

/// What a read gave: the bytes, and whether the gateway closed the connection (EOF or reset)
/// before the deadline.
#[derive(Debug, Clone)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub closed: bool,
    /// When the close (or the deadline) was seen, from the start of the read.
    pub after: Duration,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The status code of the first response, if one came.
    pub fn status(&self) -> Option<u16> {
        let text = self.text();
        let line = text.lines().next()?;
        line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
    }

    /// How many responses (status lines) came.
    pub fn responses(&self) -> usize {
        self.text().matches("HTTP/1.1 ").count() + self.text().matches("HTTP/1.0 ").count()
    }
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        let _ = stream.set_nodelay(true);
        RawClient { stream }
    }

    /// Connects from local address `source` (any 127.x.y.z works on Linux).
    pub async fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> Self {
        let connect = async {
            let socket = match source {
                std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.bind(SocketAddr::new(source, 0))?;
            socket.connect(addr).await
        };
        let stream = connect
            .await
            .unwrap_or_else(|e| panic!("connecting {source} -> {addr}: {e}"));
        let _ = stream.set_nodelay(true);
        RawClient { stream }
    }

    /// Connects, or the error (e.g. when the gateway is out of file descriptors).
    pub async fn try_connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        Ok(RawClient { stream })
    }

    /// Writes `bytes`; a write error (connection closed by the gateway) is returned.
    pub async fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .await
            .unwrap_or_else(|e| panic!("writing to the gateway: {e}"));
    }

    /// Reads until the gateway closes the connection or `timeout` passes.
    pub async fn read_to_close(&mut self, timeout: Duration) -> Received {
        self.read_until(timeout, |_| false).await
    }

    /// Reads one response with a `content-length` body (or none), within `timeout`.
    pub async fn read_response(&mut self, timeout: Duration) -> Received {
        self.read_until(timeout, |bytes| {
            head_end(bytes)
                .is_some_and(|end| bytes.len() >= end + content_length(&bytes[..end]).unwrap_or(0))
        })
        .await
    }

    /// Reads until `done` says the bytes so far are complete, the gateway closes the
    /// connection, or `timeout` passes.
    async fn read_until(&mut self, timeout: Duration, done: impl Fn(&[u8]) -> bool) -> Received {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 16384];
        let closed = loop {
            if done(&bytes) {
                break false;
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => break false,
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            }
        };
        Received {
            bytes,
            closed,
            after: started.elapsed(),
        }
    }
}

fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// An upstream that records the raw bytes of every connection and answers each request head
/// `200` (`x-upstream: NAME`, body `ok`), after reading a `content-length` body (the first
/// such header, as a lenient server would) or a chunked one.
pub struct RawUpstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    _thread: ServerThread,
}

impl RawUpstream {
    pub fn start(name: &str) -> Self {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("binding a raw upstream on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let thread = {
            let received = received.clone();
            let name = name.to_string();
            ServerThread::start(format!("raw-{name}"), listener, move |listener| {
                accept_each(listener, move |s| {
                    let slot = {
                        let mut r = lock(&received);
                        r.push(Vec::new());
                        r.len() - 1
                    };
                    tokio::spawn(serve(s, received.clone(), slot, name.clone()));
                })
            })
            .expect("a raw upstream thread")
        };
        RawUpstream {
            addr,
            received,
            _thread: thread,
        }
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Everything received, every connection one after the other, as text.
    pub fn received(&self) -> String {
        lock(&self.received)
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }

    /// Request heads received (`HTTP/1.1` request lines), over all connections.
    pub fn requests(&self) -> usize {
        self.received()
            .lines()
            .filter(|l| l.ends_with(" HTTP/1.1") || l.ends_with(" HTTP/1.0"))
            .count()
    }

    /// The lines of header `name` (case-insensitive) in everything received, as
    /// `name: value` with the name lowercased.
    pub fn header_lines(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.received()
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| format!("{name}:{v}"))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

async fn serve(mut s: TcpStream, received: Arc<Mutex<Vec<Vec<u8>>>>, slot: usize, name: String) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        // Answer every complete request in the buffer.
        while let Some(end) = head_end(&buf) {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body = if head.contains("transfer-encoding: chunked") {
                match chunked_len(&buf[end..]) {
                    Some(n) => n,
                    None => break,
                }
            } else {
                content_length(&buf[..end]).unwrap_or(0)
            };
            if buf.len() < end + body {
                break;
            }
            buf.drain(..end + body);
            let answer =
                format!("HTTP/1.1 200 OK\r\nx-upstream: {name}\r\ncontent-length: 2\r\n\r\nok");
            if s.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(c) = lock(&received).get_mut(slot) {
                    c.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

/// The length of a complete chunked body at the start of `b` (through its last chunk and
/// empty trailer), or `None` while incomplete.
fn chunked_len(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let size = String::from_utf8_lossy(&b[at..line_end]);
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            let end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
            return Some(end + 2);
        }
        at += size + 2;
        if at > b.len() {
            return None;
        }
    }
}
