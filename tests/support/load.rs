//! Continuous HTTP/1.1 load that counts everything: a few clients that keep one connection alive
//! (and reconnect when the server says `Connection: close`) and a few that open a new connection
//! for every request. Nothing panics on a failure: every refused connect, broken connection and
//! non-2xx answer is counted and its first occurrences are kept for the assertion message.
//!
//! ```no_run
//! # async fn demo(addr: std::net::SocketAddr) {
//! let load = dyegate_suite::load::Load::start(addr, dyegate_suite::load::Shape::default());
//! // ... upgrade the gateway ...
//! let report = load.stop().await;
//! assert!(report.is_clean(), "{report}");
//! # }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::CONNECTION;
use http::Version;
use http_body_util::BodyExt;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::client::{Req, ReqBody, Resp, REQUEST_TIMEOUT};

/// How many clients of each kind run, and what they ask for.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Clients that reuse one connection for as long as the server keeps it open.
    pub keep_alive: usize,
    /// Clients that open a new connection for every request.
    pub fresh: usize,
    /// The request path (the suite's upstream echoes any path).
    pub path: String,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            keep_alive: 3,
            fresh: 3,
            path: "/load".to_owned(),
        }
    }
}

/// What went wrong with one request, for the report.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Time since the load started.
    pub at: Duration,
    /// `keep-alive #N` or `fresh #N`.
    pub client: String,
    pub what: String,
}

/// Counters shared by every client task.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    bad_status: AtomicU64,
    connect_errors: AtomicU64,
    request_errors: AtomicU64,
    connections: AtomicU64,
    closed_by_server: AtomicU64,
    slowest_us: AtomicU64,
    failures: Mutex<Vec<Failure>>,
}

/// How many failures are kept with their details (all are counted).
const KEEP_FAILURES: usize = 20;

impl Tally {
    fn fail(&self, started: Instant, client: &str, what: String) {
        let mut kept = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < KEEP_FAILURES {
            kept.push(Failure {
                at: started.elapsed(),
                client: client.to_owned(),
                what,
            });
        }
    }

    fn report(&self, elapsed: Duration) -> Report {
        Report {
            elapsed,
            sent: self.sent.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            bad_status: self.bad_status.load(Ordering::Relaxed),
            connect_errors: self.connect_errors.load(Ordering::Relaxed),
            request_errors: self.request_errors.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            closed_by_server: self.closed_by_server.load(Ordering::Relaxed),
            slowest: Duration::from_micros(self.slowest_us.load(Ordering::Relaxed)),
            failures: self
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// The counts at one moment (or at the end).
#[derive(Debug, Clone)]
pub struct Report {
    pub elapsed: Duration,
    /// Requests for which a connection was available and sending started.
    pub sent: u64,
    /// Responses with a 2xx status, body read completely.
    pub ok: u64,
    /// Responses with any other status.
    pub bad_status: u64,
    /// TCP connects (or HTTP/1.1 handshakes) that failed.
    pub connect_errors: u64,
    /// Requests that got no complete response: reset, closed early, timed out.
    pub request_errors: u64,
    /// Connections opened.
    pub connections: u64,
    /// Keep-alive connections the server ended with `Connection: close`.
    pub closed_by_server: u64,
    /// The longest request (connect included for the fresh clients).
    pub slowest: Duration,
    /// The first failures, with when and which client.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Every request answered with 2xx, and no connection error.
    pub fn is_clean(&self) -> bool {
        self.ok == self.sent
            && self.bad_status == 0
            && self.connect_errors == 0
            && self.request_errors == 0
    }

    /// All failures of any kind.
    pub fn failed(&self) -> u64 {
        self.bad_status + self.connect_errors + self.request_errors
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests in {:.1?} ({} ok, {} non-2xx, {} connect errors, {} request errors); \
             {} connections opened, {} keep-alive connections closed by the server; slowest {:.1?}",
            self.sent,
            self.elapsed,
            self.ok,
            self.bad_status,
            self.connect_errors,
            self.request_errors,
            self.connections,
            self.closed_by_server,
            self.slowest
        )?;
        for failure in &self.failures {
            write!(
                f,
                "\n  at {:.3?} {}: {}",
                failure.at, failure.client, failure.what
            )?;
        }
        Ok(())
    }
}

/// Load running in the background until [`stop`](Load::stop).
pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts the clients against `addr`; they send their first requests right away.
    pub fn start(addr: SocketAddr, shape: Shape) -> Self {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let mut clients = Vec::new();
        for n in 0..shape.keep_alive {
            let client = Client {
                name: format!("keep-alive #{n}"),
                addr,
                path: shape.path.clone(),
                started,
                stop: stop.clone(),
                tally: tally.clone(),
            };
            clients.push(tokio::spawn(client.keep_alive()));
        }
        for n in 0..shape.fresh {
            let client = Client {
                name: format!("fresh #{n}"),
                addr,
                path: shape.path.clone(),
                started,
                stop: stop.clone(),
                tally: tally.clone(),
            };
            clients.push(tokio::spawn(client.fresh()));
        }
        Self {
            started,
            stop,
            tally,
            clients,
        }
    }

    /// The counts so far.
    pub fn report(&self) -> Report {
        self.tally.report(self.started.elapsed())
    }

    /// Waits until at least `n` more requests have been answered with 2xx, up to `timeout`;
    /// returns whether they were.
    pub async fn wait_for_more_ok(&self, n: u64, timeout: Duration) -> bool {
        let target = self.tally.ok.load(Ordering::Relaxed) + n;
        crate::wait::wait_until_async(timeout, || async {
            self.tally.ok.load(Ordering::Relaxed) >= target
        })
        .await
    }

    /// Lets every client finish the request it is on, then returns the final counts.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            if let Err(e) = client.await {
                panic!("a load client task failed: {e}");
            }
        }
        self.tally.report(self.started.elapsed())
    }
}

struct Client {
    name: String,
    addr: SocketAddr,
    path: String,
    started: Instant,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
}

/// What one exchange left the connection as.
enum Outcome {
    /// A response without `Connection: close`: the next request goes on the same connection.
    Reusable,
    /// A response with `Connection: close`: the server ends the connection, open a new one.
    Closing,
    /// No complete response (counted as a failure).
    Broken,
}

/// After a failed connect, wait this long before the next one (no busy loop on a dead port).
const RETRY_AFTER: Duration = Duration::from_millis(5);

impl Client {
    fn request(&self, seq: u64) -> http::Request<ReqBody> {
        let path = format!(
            "{}?client={}&seq={seq}",
            self.path,
            self.name.replace(' ', "")
        );
        Req::get(&path).into_http(self.addr, Version::HTTP_11)
    }

    async fn connect(&self) -> Option<http1::SendRequest<ReqBody>> {
        let opened = async {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Ok::<_, std::io::Error>(sender)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, opened).await {
            Ok(Ok(sender)) => {
                self.tally.connections.fetch_add(1, Ordering::Relaxed);
                Some(sender)
            }
            Ok(Err(e)) => {
                self.connect_failed(format!("connect: {e}"));
                None
            }
            Err(_) => {
                self.connect_failed(format!("connect: no answer within {REQUEST_TIMEOUT:?}"));
                None
            }
        }
    }

    fn connect_failed(&self, what: String) {
        self.tally.connect_errors.fetch_add(1, Ordering::Relaxed);
        self.tally.fail(self.started, &self.name, what);
    }

    /// Sends one request on `sender` and counts the outcome.
    async fn exchange(&self, sender: &mut http1::SendRequest<ReqBody>, seq: u64) -> Outcome {
        let begun = Instant::now();
        self.tally.sent.fetch_add(1, Ordering::Relaxed);
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            sender.ready().await?;
            let response = sender.send_request(self.request(seq)).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Resp {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                body,
            })
        })
        .await;
        let took = u64::try_from(begun.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.tally.slowest_us.fetch_max(took, Ordering::Relaxed);
        match result {
            Ok(Ok(resp)) => {
                if resp.status.is_success() {
                    self.tally.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.tally.bad_status.fetch_add(1, Ordering::Relaxed);
                    self.tally.fail(
                        self.started,
                        &self.name,
                        format!("status {}: {}", resp.status, resp.text().trim()),
                    );
                }
                let close = resp
                    .headers
                    .get(CONNECTION)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                if close {
                    Outcome::Closing
                } else {
                    Outcome::Reusable
                }
            }
            Ok(Err(e)) => {
                self.tally.request_errors.fetch_add(1, Ordering::Relaxed);
                self.tally
                    .fail(self.started, &self.name, format!("request #{seq}: {e}"));
                Outcome::Broken
            }
            Err(_) => {
                self.tally.request_errors.fetch_add(1, Ordering::Relaxed);
                self.tally.fail(
                    self.started,
                    &self.name,
                    format!("request #{seq}: no response within {REQUEST_TIMEOUT:?}"),
                );
                Outcome::Broken
            }
        }
    }

    async fn keep_alive(self) {
        let mut conn: Option<http1::SendRequest<ReqBody>> = None;
        let mut seq = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let sender = match conn.as_mut() {
                Some(sender) => sender,
                None => match self.connect().await {
                    Some(sender) => conn.insert(sender),
                    None => {
                        // time is tested: the load's pace: a refused connection (the gateway between processes) is retried after RETRY_AFTER, not in a hot loop.
                        tokio::time::sleep(RETRY_AFTER).await;
                        continue;
                    }
                },
            };
            seq += 1;
            match self.exchange(sender, seq).await {
                Outcome::Reusable => {}
                Outcome::Closing => {
                    self.tally.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    conn = None;
                }
                Outcome::Broken => conn = None,
            }
        }
    }

    async fn fresh(self) {
        let mut seq = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let Some(mut sender) = self.connect().await else {
                // time is tested: the load's pace, as above.
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            };
            seq += 1;
            self.exchange(&mut sender, seq).await;
        }
    }
}
