//! Open-loop HTTP/1.1 load at a fixed rate, for run.sh's `p99half` scenario: the latency a proxy
//! gives at a chosen fraction of its throughput, without a closed loop hiding its stalls.
//!
//!   open-loop --url http://127.0.0.1:PORT/ --rate 10000 --conns 64 --duration 10
//!
//! Request k of the run is due at `k / rate` seconds after the start; connection i (of `conns`,
//! one thread each, keep-alive) sends the requests k = i, i + conns, i + 2 conns, ... so the due
//! times are spread evenly over time and over the connections (wrk2's model; not every connection
//! firing at once, as per-connection timers started together would). A connection still waiting
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
//! Standard library only, so run.sh builds it with a plain `rustc -O` in seconds. Linux: each
//! thread lowers its timer slack to 1 µs so that a sleep until a due time ends within microseconds
//! (the default slack is 50 µs).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
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
    duration: Duration,
    headers: Vec<String>,
}

fn usage() -> String {
    "usage: open-loop --url http://HOST:PORT/PATH --rate REQ_PER_S --conns N --duration SECONDS \
     [--header 'name: value']..."
        .to_owned()
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut url = None;
    let mut rate = None;
    let mut conns = 64usize;
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
    if rate.is_nan() || rate <= 0.0 || conns == 0 {
        return Err("--rate and --conns must be positive".to_owned());
    }
    Ok(Args {
        host: host.to_owned(),
        port,
        path: path.to_owned(),
        rate,
        conns,
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

/// One connection's share of the run: the latencies (µs) of its answered requests and its errors.
#[derive(Default)]
struct Share {
    latencies: Vec<u64>,
    errors: u64,
}

fn connect(addr: &std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(addr, ANSWER_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    Ok(stream)
}

/// Send one request and read its whole answer; `Ok(true)` for a 2xx/3xx, `Ok(false)` for any
/// other status. Sets `*reuse` to whether the connection can carry the next request.
fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
    reuse: &mut bool,
) -> std::io::Result<bool> {
    stream.write_all(request)?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match answer_end(buf).map_err(std::io::Error::other)? {
            Some((end, status, close)) => {
                *reuse = !close && end == buf.len();
                return Ok((200..400).contains(&status));
            }
            None => {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn fine_timer_slack() {
    extern "C" {
        fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
    const PR_SET_TIMERSLACK: i32 = 29;
    // SAFETY: prctl(PR_SET_TIMERSLACK, ns) only sets this thread's timer slack; no pointers.
    unsafe {
        prctl(PR_SET_TIMERSLACK, 1_000, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
fn fine_timer_slack() {}

fn run_connection(
    index: usize,
    args: &Args,
    addr: std::net::SocketAddr,
    request: &[u8],
    start: Instant,
) -> Share {
    fine_timer_slack();
    let mut share = Share::default();
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut k = index as u64;
    loop {
        let due = start + due_offset(k, args.rate);
        if due >= start + args.duration {
            break;
        }
        k += args.conns as u64;
        let now = Instant::now();
        if now < due {
            thread::sleep(due - now);
        } else if now - due > MAX_BEHIND {
            share.errors += 1; // never sent: the run fell too far behind
            continue;
        }
        let mut conn = match stream.take() {
            Some(s) => s,
            None => match connect(&addr) {
                Ok(s) => s,
                Err(_) => {
                    share.errors += 1;
                    continue;
                }
            },
        };
        let mut reuse = false;
        match exchange(&mut conn, request, &mut buf, &mut reuse) {
            Ok(ok) => {
                share.latencies.push(due.elapsed().as_micros() as u64);
                if !ok {
                    share.errors += 1;
                }
                if reuse {
                    stream = Some(conn);
                }
            }
            Err(_) => share.errors += 1,
        }
    }
    share
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
    let threads: Vec<_> = (0..args.conns)
        .map(|i| {
            let (args, request) = (Arc::clone(&args), Arc::clone(&request));
            thread::spawn(move || run_connection(i, &args, addr, &request, start))
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
                eprintln!("open-loop: a connection thread panicked");
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
