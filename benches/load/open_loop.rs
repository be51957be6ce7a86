//! Open-loop HTTP/1.1 load at a fixed rate, for run.sh's `p99half` scenario: the latency a proxy
//! gives at a chosen fraction of its throughput, without a closed loop hiding its stalls.
//!
//!   open-loop --url http://127.0.0.1:PORT/ --rate 10000 --conns 64 --threads 2 --duration 10
//!
//! Request k of the run is due at `k / rate` seconds after the start; connection i (of `conns`,
//! keep-alive) sends the requests k = i, i + conns, i + 2 conns, ... so the due times are spread
//! evenly over time and over the connections (wrk2's model; not every connection firing at once,
//! as per-connection timers started together would). `threads` threads (default 2, as wrk's -t2)
//! share the connections, each waiting in ppoll(2) on its nonblocking sockets for an answer or the
//! next due time, so the generator costs about what wrk does per request. A connection still waiting
//! for an answer when its next request is due sends that request as soon as the answer is in, and
//! that request's latency is counted from when it was due, not from when it could be sent: a stall
//! of the proxy shows in the percentiles instead of quietly lowering the rate (coordinated
//! omission). Requests due after `duration` are not sent; the run waits for those in flight.
//!
//! Prints one line on stdout, the fields run.sh's parse_wrk gives:
//!   requests duration_us req_per_s avg_us p50_us p75_us p90_us p99_us errors
//! (errors: non-2xx/3xx answers, broken or refused connections, answers not in within 5 s, and
//! requests never sent because the run fell 5 s behind), and a readable summary on stderr.
//!
//! Standard library only (and two libc calls, declared here), so run.sh builds it with a plain
//! `rustc -O` in seconds. Linux: each thread lowers its timer slack to 1 µs so that a wait until a
//! due time ends within microseconds (the default slack is 50 µs).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How late a connection may fall behind its schedule before it stops sending (counted as errors).
const MAX_BEHIND: Duration = Duration::from_secs(5);
/// An answer not complete within this is an error (and the connection is replaced).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    path: String,
    rate: f64,
    conns: usize,
    threads: usize,
    duration: Duration,
    headers: Vec<String>,
}

fn usage() -> String {
    "usage: open-loop --url http://HOST:PORT/PATH --rate REQ_PER_S --conns N [--threads N] \
     --duration SECONDS [--header 'name: value']..."
        .to_owned()
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut url = None;
    let mut rate = None;
    let mut conns = 64usize;
    let mut threads = 2usize;
    let mut duration = None;
    let mut headers = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        match flag.as_str() {
            "--url" => url = Some(value.clone()),
            "--rate" => {
                rate = Some(
                    value
                        .parse::<f64>()
                        .map_err(|e| format!("--rate {value}: {e}"))?,
                )
            }
            "--conns" => conns = value.parse().map_err(|e| format!("--conns {value}: {e}"))?,
            "--duration" => {
                let secs = value.trim_end_matches('s');
                let secs: f64 = secs
                    .parse()
                    .map_err(|e| format!("--duration {value}: {e}"))?;
                duration = Some(Duration::from_secs_f64(secs));
            }
            "--threads" => {
                threads = value
                    .parse()
                    .map_err(|e| format!("--threads {value}: {e}"))?
            }
            "--header" => headers.push(value.clone()),
            other => return Err(format!("unknown option {other}\n{}", usage())),
        }
    }
    let url = url.ok_or_else(usage)?;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--url {url}: only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("--url {url}: needs a port"))?;
    let port = port
        .parse()
        .map_err(|e| format!("--url {url}: port: {e}"))?;
    let rate = rate.ok_or_else(usage)?;
    if rate.is_nan() || rate <= 0.0 || conns == 0 || threads == 0 {
        return Err("--rate, --conns and --threads must be positive".to_owned());
    }
    Ok(Args {
        host: host.to_owned(),
        port,
        path: path.to_owned(),
        rate,
        conns,
        threads,
        duration: duration.ok_or_else(usage)?,
        headers,
    })
}

/// When request `k` is due, as an offset from the start: `k / rate`.
fn due_offset(k: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(k as f64 / rate)
}

/// The value at quantile `q` (0..=1) of sorted latencies: the smallest value with at least
/// `q` of the samples at or below it.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Where an HTTP/1.1 answer in `buf` ends, once it is complete: `Some(len)`, or `None` while more
/// is needed. Knows Content-Length and chunked bodies (the proxies here answer with either),
/// and the status code. `Err` for an answer it cannot frame.
fn answer_end(buf: &[u8]) -> Result<Option<(usize, u16, bool)>, String> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "answer head not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    if chunked {
        // Walk the chunks: size line, data, CRLF; a zero size then the (empty) trailer.
        let mut at = head_end;
        loop {
            let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                return Ok(None);
            };
            let size_field = std::str::from_utf8(&buf[at..at + eol]).map_err(|_| "bad chunk")?;
            let size_hex = size_field.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| "bad chunk size")?;
            at += eol + 2;
            if size == 0 {
                return Ok(buf[at..]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map(|i| (at + i + 2, status, close)));
            }
            if buf.len() < at + size + 2 {
                return Ok(None);
            }
            at += size + 2;
        }
    }
    let end = head_end + length.unwrap_or(0);
    Ok((buf.len() >= end).then_some((end, status, close)))
}

/// One thread's share of the run: the latencies (µs) of its answered requests and its errors.
#[derive(Default)]
struct Share {
    latencies: Vec<u64>,
    errors: u64,
}

fn connect(addr: &std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(addr, ANSWER_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// The kernel interface this needs beyond std: ppoll (a wait on many sockets with a nanosecond
/// timeout) and the thread's timer slack.
mod sys {
    use std::os::fd::RawFd;
    use std::time::Duration;

    #[repr(C)]
    pub struct PollFd {
        pub fd: RawFd,
        pub events: i16,
        pub revents: i16,
    }
    pub const POLLIN: i16 = 0x1;

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn ppoll(fds: *mut PollFd, nfds: u64, timeout: *const Timespec, sigmask: *const u8) -> i32;
        fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }

    /// Wait until one of `fds` is readable or `timeout` has passed.
    pub fn wait(fds: &mut [PollFd], timeout: Duration) {
        let ts = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        // SAFETY: fds is a valid, exclusively borrowed array of fds.len() pollfd structs; ts
        // lives across the call; a null sigmask keeps the thread's signal mask.
        unsafe {
            ppoll(fds.as_mut_ptr(), fds.len() as u64, &ts, std::ptr::null());
        }
    }

    /// This thread's timer slack to 1 µs (default 50 µs), so a wait ends when it should.
    pub fn fine_timer_slack() {
        const PR_SET_TIMERSLACK: i32 = 29;
        // SAFETY: prctl(PR_SET_TIMERSLACK, ns) only sets this thread's timer slack.
        unsafe {
            prctl(PR_SET_TIMERSLACK, 1_000, 0, 0, 0);
        }
    }
}

/// One keep-alive connection of a thread and where it is in its schedule.
struct Conn {
    /// The index of its next request (k = its index, + conns, + 2 conns, ...).
    next: u64,
    stream: Option<TcpStream>,
    /// The due time of the request it waits an answer for.
    waiting: Option<Instant>,
    sent_at: Instant,
    buf: Vec<u8>,
}

/// Read what the socket has; `Ok(Some(reuse))` once the answer is complete (counted into
/// `share`), `Ok(None)` while it is not, `Err` for a broken connection.
fn read_answer(conn: &mut Conn, share: &mut Share, due: Instant) -> std::io::Result<Option<bool>> {
    let Some(stream) = conn.stream.as_mut() else {
        return Err(std::io::ErrorKind::NotConnected.into());
    };
    // Read until the answer is complete or the socket has nothing more (no extra read for the
    // usual small answer that arrives whole); the peer closing after a complete answer is fine.
    let mut chunk = [0u8; 16 * 1024];
    let mut eof = false;
    let framed = loop {
        // A read that fills the whole chunk may have left more behind: read again.
        let more = match stream.read(&mut chunk) {
            Ok(0) => {
                eof = true;
                false
            }
            Ok(n) => {
                conn.buf.extend_from_slice(&chunk[..n]);
                n == chunk.len()
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => return Err(e),
        };
        let framed = answer_end(&conn.buf).map_err(std::io::Error::other)?;
        if framed.is_some() || !more {
            break framed;
        }
    };
    match framed {
        None if eof => Err(std::io::ErrorKind::UnexpectedEof.into()),
        None => Ok(None),
        Some((end, status, close)) => {
            share.latencies.push(due.elapsed().as_micros() as u64);
            if !(200..400).contains(&status) {
                share.errors += 1;
            }
            Ok(Some(!close && end == conn.buf.len()))
        }
    }
}

/// One thread's connections (indexes `first`, `first + step`, ...): sends each request when it
/// is due (or as soon as its connection is free after that), reads the answers, and waits in
/// ppoll for the next answer or due time.
fn run_thread(
    indexes: Vec<u64>,
    args: &Args,
    addr: std::net::SocketAddr,
    request: &[u8],
    start: Instant,
) -> Share {
    sys::fine_timer_slack();
    let mut share = Share::default();
    let end = start + args.duration;
    let mut conns: Vec<Conn> = indexes
        .into_iter()
        .map(|next| Conn {
            next,
            stream: None,
            waiting: None,
            sent_at: start,
            buf: Vec::with_capacity(4096),
        })
        .collect();
    let mut fds: Vec<sys::PollFd> = Vec::with_capacity(conns.len());
    let mut waiting_on: Vec<usize> = Vec::with_capacity(conns.len());
    loop {
        // Send every request that is due on a free connection; find the next due time.
        let now = Instant::now();
        let mut next_due: Option<Instant> = None;
        for conn in conns.iter_mut().filter(|c| c.waiting.is_none()) {
            loop {
                let due = start + due_offset(conn.next, args.rate);
                if due >= end {
                    break;
                }
                if due > now {
                    next_due = Some(next_due.map_or(due, |d| d.min(due)));
                    break;
                }
                conn.next += args.conns as u64;
                if now - due > MAX_BEHIND {
                    share.errors += 1; // never sent: the run fell too far behind
                    continue;
                }
                if conn.stream.is_none() {
                    match connect(&addr) {
                        Ok(s) => conn.stream = Some(s),
                        Err(_) => {
                            share.errors += 1;
                            continue;
                        }
                    }
                }
                // A request of a few dozen bytes into an idle connection's empty send buffer:
                // written whole, or the connection is broken.
                let written = conn.stream.as_mut().map(|s| s.write(request));
                if !matches!(written, Some(Ok(n)) if n == request.len()) {
                    share.errors += 1;
                    conn.stream = None;
                    continue;
                }
                conn.buf.clear();
                conn.waiting = Some(due);
                conn.sent_at = Instant::now();
                break;
            }
        }
        // Wait for an answer or the next due time.
        fds.clear();
        waiting_on.clear();
        for (i, conn) in conns.iter().enumerate() {
            if let (Some(_), Some(stream)) = (conn.waiting, conn.stream.as_ref()) {
                fds.push(sys::PollFd {
                    fd: stream.as_raw_fd(),
                    events: sys::POLLIN,
                    revents: 0,
                });
                waiting_on.push(i);
            }
        }
        if fds.is_empty() && next_due.is_none() {
            return share; // nothing in flight and nothing more due
        }
        let now = Instant::now();
        let timeout = next_due
            .map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(now)
            })
            .min(Duration::from_millis(100));
        sys::wait(&mut fds, timeout);
        // Read the answers that arrived; give up on those that took too long.
        let now = Instant::now();
        for (fd, &i) in fds.iter().zip(&waiting_on) {
            let conn = &mut conns[i];
            let Some(due) = conn.waiting else { continue };
            let result = if fd.revents != 0 {
                read_answer(conn, &mut share, due)
            } else if now - conn.sent_at > ANSWER_TIMEOUT {
                Err(std::io::ErrorKind::TimedOut.into())
            } else {
                Ok(None)
            };
            match result {
                Ok(None) => {}
                Ok(Some(reuse)) => {
                    conn.waiting = None;
                    if !reuse {
                        conn.stream = None;
                    }
                }
                Err(_) => {
                    share.errors += 1;
                    conn.waiting = None;
                    conn.stream = None;
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("open-loop: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = match (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(a)) => a,
        _ => {
            eprintln!("open-loop: cannot resolve {}:{}", args.host, args.port);
            return ExitCode::from(2);
        }
    };
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\n",
        args.path, args.host, args.port
    );
    for h in &args.headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let request = Arc::new(request.into_bytes());

    // Start a little in the future so every thread is waiting when the first request is due.
    let start = Instant::now() + Duration::from_millis(50);
    let threads: Vec<_> = (0..args.threads.min(args.conns))
        .map(|t| {
            let (args, request) = (Arc::clone(&args), Arc::clone(&request));
            let indexes = (t..args.conns)
                .step_by(args.threads)
                .map(|i| i as u64)
                .collect();
            thread::spawn(move || run_thread(indexes, &args, addr, &request, start))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in threads {
        match t.join() {
            Ok(share) => {
                latencies.extend(share.latencies);
                errors += share.errors;
            }
            Err(_) => {
                eprintln!("open-loop: a thread panicked");
                return ExitCode::from(1);
            }
        }
    }
    let elapsed = args.duration.as_secs_f64();
    latencies.sort_unstable();
    let n = latencies.len();
    if n == 0 {
        eprintln!("open-loop: no request answered ({errors} errors)");
        return ExitCode::from(1);
    }
    let avg = latencies.iter().sum::<u64>() as f64 / n as f64;
    let (p50, p75, p90, p99) = (
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.75),
        quantile(&latencies, 0.90),
        quantile(&latencies, 0.99),
    );
    let rps = n as f64 / elapsed;
    eprintln!(
        "open-loop: {n} answers in {elapsed:.1} s ({rps:.0} req/s, target {:.0}) over {} connections; \
         latency from the due time: avg {avg:.0}us p50 {p50}us p75 {p75}us p90 {p90}us p99 {p99}us \
         max {}us; errors {errors}",
        args.rate,
        args.conns,
        latencies[n - 1]
    );
    println!(
        "{n} {} {rps:.2} {avg:.1} {p50} {p75} {p90} {p99} {errors}",
        (elapsed * 1e6) as u64
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_spread_evenly_over_connections() {
        // 4 connections at 1000 req/s: connection 1 sends requests 1, 5, 9 at 1, 5, 9 ms.
        let rate = 1000.0;
        let ks: Vec<u64> = (0..3).map(|j| 1 + j * 4).collect();
        let dues: Vec<Duration> = ks.iter().map(|&k| due_offset(k, rate)).collect();
        assert_eq!(dues, [1, 5, 9].map(Duration::from_millis));
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.99), 0);
    }

    #[test]
    fn content_length_answers_end_after_their_body() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nstable\n";
        assert_eq!(answer_end(&a[..a.len() - 1]).unwrap(), None);
        assert_eq!(answer_end(a).unwrap(), Some((a.len(), 200, false)));
        let c = b"HTTP/1.1 503 x\r\ncontent-length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(answer_end(c).unwrap(), Some((c.len(), 503, true)));
    }

    #[test]
    fn chunked_answers_end_after_the_last_chunk() {
        let a = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nstable\n\r\n0\r\n\r\n";
        for cut in [a.len() - 1, a.len() - 3, a.len() - 8] {
            assert_eq!(answer_end(&a[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(answer_end(a).unwrap(), Some((a.len(), 200, false)));
    }

    #[test]
    fn arguments_parse_and_bad_ones_are_named() {
        let argv: Vec<String> = [
            "--url",
            "http://127.0.0.1:8080/x",
            "--rate",
            "2.5",
            "--conns",
            "3",
            "--duration",
            "4s",
        ]
        .map(String::from)
        .to_vec();
        let a = parse_args(&argv).unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.path.as_str(), a.conns),
            ("127.0.0.1", 8080, "/x", 3)
        );
        assert_eq!(a.duration, Duration::from_secs(4));
        let bad: Vec<String> = ["--url", "https://x:1/"].map(String::from).to_vec();
        assert!(parse_args(&bad).unwrap_err().contains("only http://"));
    }
}
