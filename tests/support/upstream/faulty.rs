//! An upstream that breaks for real, on loopback: raw HTTP/1.1 over TCP so that every fault is
//! what a broken server does on the wire (no HTTP library smoothing it over). The fault can be
//! changed while the upstream runs, to break it and heal it mid-test.
//!
//! ```no_run
//! use dyegate_suite::upstream::{Fault, FaultyUpstream};
//! let up = FaultyUpstream::start("canary", Fault::Hang);
//! // ... requests through the gateway time out ...
//! up.set_fault(Fault::None); // now it answers 200
//! ```

use crate::server_thread::{accept_each, ServerThread};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the upstream misbehaves. Health checks (`GET /healthz`) follow the fault too, except
/// where the variant says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Healthy: 200 with `x-upstream: NAME`, keep-alive.
    None,
    /// Healthy, answering the body the upstream of this name answers (`x-upstream` is still
    /// its own): a canary whose answers match stable's.
    AnswerAs(&'static str),
    /// Accepts the connection, reads the request and never answers.
    Hang,
    /// Sends the response head (`content-length: 1000`) and 10 bytes of body, then stalls.
    StallBody,
    /// Sends the response head and part of the body, then resets the connection (RST).
    ResetMidResponse,
    /// Resets the connection as soon as the request has arrived, before any answer.
    ResetBeforeResponse,
    /// Answers every request 500.
    Status500,
    /// Answers every request 503.
    Status503,
    /// Answers one request per connection, then closes it (keep-alive announced, not kept).
    CloseAfterOne,
    /// `GET /healthz` answers 200; every other request 500.
    HealthyButFailing,
    /// `GET /healthz` answers 500; every other request 200.
    UnhealthyButServing,
    /// Healthy, but `GET /healthz` answers only after 300 ms.
    SlowHealthz,
    /// Answers 500 to this many requests in every 10 (the first ones of each ten), 200 to the
    /// others: a canary that goes partly bad.
    FailTenths(u8),
    /// Answers 200 after this many milliseconds: a slow canary.
    Delay(u64),
    /// Holds every request (health checks answer 200) until [`FaultyUpstream::release`], then
    /// answers 200: a request in flight for exactly as long as the test needs one.
    Hold,
}

struct Shared {
    name: String,
    fault: Mutex<Fault>,
    /// Requests other than health checks, and health checks, received.
    requests: AtomicUsize,
    health_checks: AtomicUsize,
    /// Health checks being answered right now, and the most seen at once.
    checks_in_flight: AtomicUsize,
    max_checks_in_flight: AtomicUsize,
    /// Body bytes received with requests other than health checks.
    body_bytes: AtomicUsize,
    /// Requests (health checks not included) that carried `x-dyegate-mirror`: a gateway's
    /// copies.
    marked: AtomicUsize,
    /// Requests held by [`Fault::Hold`] right now, and the switch that lets them go.
    held: AtomicUsize,
    released: tokio::sync::watch::Sender<bool>,
}

/// Handle to a running faulty upstream; dropping it stops it and closes its connections.
pub struct FaultyUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _thread: ServerThread,
}

impl FaultyUpstream {
    /// Starts on a fresh loopback port, misbehaving as `fault` says.
    pub fn start(name: &str, fault: Fault) -> Self {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), name, fault)
            .expect("binding a faulty upstream on 127.0.0.1:0")
    }

    /// Starts on `addr`, e.g. again on the address of one that was dropped ("restarted").
    pub fn start_on(addr: SocketAddr, name: &str, fault: Fault) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            fault: Mutex::new(fault),
            requests: AtomicUsize::new(0),
            health_checks: AtomicUsize::new(0),
            checks_in_flight: AtomicUsize::new(0),
            max_checks_in_flight: AtomicUsize::new(0),
            body_bytes: AtomicUsize::new(0),
            marked: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            released: tokio::sync::watch::Sender::new(false),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            ServerThread::start(format!("faulty-{name}"), listener, move |listener| {
                accept_each(listener, move |stream| {
                    tokio::spawn(connection(stream, Arc::clone(&shared)));
                })
            })?
        };
        Ok(Self {
            addr,
            shared,
            _thread: thread,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"127.0.0.1:PORT"`, as written in a `targets` list.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Changes the fault; connections already open follow it from their next request.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    /// Requests received, health checks not included.
    pub fn request_count(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests received that carried `x-dyegate-mirror` (mirrored copies); the others are
    /// `request_count() - marked_count()`.
    pub fn marked_count(&self) -> usize {
        self.shared.marked.load(Ordering::SeqCst)
    }

    /// Health checks (`GET /healthz`) received.
    pub fn health_checks(&self) -> usize {
        self.shared.health_checks.load(Ordering::SeqCst)
    }

    /// The most health checks that were being answered at one time.
    pub fn max_checks_in_flight(&self) -> usize {
        self.shared.max_checks_in_flight.load(Ordering::SeqCst)
    }

    /// Requests held by [`Fault::Hold`] now.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Lets every request held by [`Fault::Hold`] go (they answer 200), and the ones that come
    /// later too.
    pub fn release(&self) {
        self.shared.released.send_replace(true);
    }

    /// Request body bytes received (health checks not included).
    pub fn body_bytes(&self) -> usize {
        self.shared.body_bytes.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// One request head and body as read off the wire.
struct Request {
    path: String,
    body_len: usize,
    /// Carries `x-dyegate-mirror`.
    marked: bool,
}

/// Reads one request (head, then a `content-length` body); `None` at EOF or on garbage.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1)?.to_string();
    let header = |name: &str| {
        (head.lines())
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let body_len = header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let marked = header("x-dyegate-mirror").is_some();
    while buf.len() < head_end + body_len {
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + body_len);
    Some(Request {
        path,
        body_len,
        marked,
    })
}

fn response(status: u16, name: &str, body: &str, close: bool) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nx-upstream: {name}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: {}\r\n\r\n{body}",
        body.len(),
        if close { "close" } else { "keep-alive" }
    )
    .into_bytes()
}

/// Closes with RST instead of FIN (SO_LINGER 0), as a crashed server's kernel does.
fn reset(stream: TcpStream) {
    if let Ok(std) = stream.into_std() {
        let _ = socket_linger_zero(&std);
        drop(std);
    }
}

fn socket_linger_zero(s: &std::net::TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket this function borrows, with a correctly sized value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

async fn connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut stream, &mut buf).await {
        let fault = *lock(&shared.fault);
        let name = shared.name.as_str();
        if req.path == "/healthz" {
            shared.health_checks.fetch_add(1, Ordering::SeqCst);
            let now = shared.checks_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            shared.max_checks_in_flight.fetch_max(now, Ordering::SeqCst);
            let keep = answer_health(&mut stream, fault, name).await;
            shared.checks_in_flight.fetch_sub(1, Ordering::SeqCst);
            match keep {
                Some(true) => continue,
                Some(false) => return,
                None => return reset(stream),
            }
        }
        if req.marked {
            shared.marked.fetch_add(1, Ordering::SeqCst);
        }
        let n = shared.requests.fetch_add(1, Ordering::SeqCst);
        shared.body_bytes.fetch_add(req.body_len, Ordering::SeqCst);
        let ok = match fault {
            Fault::AnswerAs(other) => format!("{other} {}\n", req.path),
            _ => format!("{name} {}\n", req.path),
        };
        let bytes = match fault {
            Fault::None | Fault::AnswerAs(_) | Fault::UnhealthyButServing | Fault::SlowHealthz => {
                response(200, name, &ok, false)
            }
            Fault::FailTenths(k) if n % 10 < usize::from(k) => {
                response(500, name, "failing\n", false)
            }
            Fault::FailTenths(_) => response(200, name, &ok, false),
            Fault::Delay(ms) => {
                // time is tested: a slow upstream is the fault under test (timeouts, latency gates).
                tokio::time::sleep(Duration::from_millis(ms)).await;
                response(200, name, &ok, false)
            }
            Fault::CloseAfterOne => {
                let _ = stream.write_all(&response(200, name, &ok, false)).await;
                return;
            }
            Fault::Status500 | Fault::HealthyButFailing => response(500, name, "failing\n", false),
            Fault::Status503 => response(503, name, "unavailable\n", false),
            Fault::Hold => {
                let mut released = shared.released.subscribe();
                shared.held.fetch_add(1, Ordering::SeqCst);
                let _ = released.wait_for(|r| *r).await;
                shared.held.fetch_sub(1, Ordering::SeqCst);
                response(200, name, &ok, false)
            }
            Fault::Hang => return hang(stream).await,
            Fault::StallBody => {
                let head = format!("HTTP/1.1 200 OK\r\nx-upstream: {name}\r\ncontent-length: 1000\r\n\r\n0123456789");
                let _ = stream.write_all(head.as_bytes()).await;
                return hang(stream).await;
            }
            Fault::ResetMidResponse => {
                let head = format!("HTTP/1.1 200 OK\r\nx-upstream: {name}\r\ncontent-length: 1000\r\n\r\n0123456789");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.flush().await;
                // time is tested: the reset must come after the head has reached the gateway, so that it is a reset mid-response (a reset right behind the write can drop the unread head).
                tokio::time::sleep(Duration::from_millis(20)).await;
                return reset(stream);
            }
            Fault::ResetBeforeResponse => return reset(stream),
        };
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// Answers a health check: `Some(keep_alive)`, or `None` to reset the connection.
async fn answer_health(stream: &mut TcpStream, fault: Fault, name: &str) -> Option<bool> {
    let status = match fault {
        Fault::None
        | Fault::AnswerAs(_)
        | Fault::HealthyButFailing
        | Fault::CloseAfterOne
        | Fault::FailTenths(_)
        | Fault::Delay(_)
        | Fault::Hold => 200,
        Fault::SlowHealthz => {
            // time is tested: a health check that takes 300 ms is the fault under test.
            tokio::time::sleep(Duration::from_millis(300)).await;
            200
        }
        Fault::Status500 | Fault::UnhealthyButServing => 500,
        Fault::Status503 => 503,
        Fault::Hang | Fault::StallBody => {
            // Never answers; the checker's timeout ends it.
            // time is tested: a check that never answers; the checker's timeout is under test.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Some(false);
        }
        Fault::ResetMidResponse | Fault::ResetBeforeResponse => return None,
    };
    let close = fault == Fault::CloseAfterOne;
    stream
        .write_all(&response(status, name, "health\n", close))
        .await
        .ok()?;
    Some(!close)
}

/// Keeps the connection open, reading and discarding, until the peer closes it.
async fn hang(mut stream: TcpStream) {
    let mut sink = [0u8; 4096];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            return;
        }
    }
}
