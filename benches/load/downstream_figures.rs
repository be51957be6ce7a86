//! Figures of the downstream-limits work (issue 18 item 1), measured on the real gateway: a bench
//! target run by `cargo test` (never by `./tests/run.sh`); they hold thousands of sockets and take
//! a minute or more. Run one at a time, against any binary (`DYEGATE_BIN`);
//! `DYEGATE_FIGURES_LIMITS` is written as gateway.yaml's
//! `limits:` value when set (leave it unset for a binary that predates `limits`):
//!
//! ```text
//! cargo test --bench downstream_figures -- --nocapture --test-threads=1
//! DYEGATE_BIN=/tmp/dyegate-before cargo test --bench downstream_figures -- --nocapture --test-threads=1
//! ```
//! Results: benches/load/README.md, "Downstream limits".

use dyegate_suite::procfs::rss_kib;
use std::time::{Duration, Instant};

use dyegate_suite::raw::RawClient;
use dyegate_suite::{Dyegate, GatewayConfig, Upstream};
use tokio::net::TcpStream;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn gateway(up: &Upstream) -> Dyegate {
    let config = GatewayConfig::new(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target()
    ));
    match std::env::var("DYEGATE_FIGURES_LIMITS") {
        Ok(limits) => config
            .with_gateway_extra(&format!("limits: {limits}\n"))
            .start(),
        Err(_) => config.start(),
    }
}

/// How many of `conns` the gateway has closed (EOF or reset readable at once, after any
/// answer it sent first, e.g. a 408).
fn closed_by_gateway(conns: &mut [TcpStream]) -> usize {
    let mut b = [0u8; 4096];
    conns
        .iter_mut()
        .filter(|c| loop {
            match c.try_read(&mut b) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) => break e.kind() != std::io::ErrorKind::WouldBlock,
            }
        })
        .count()
}

/// One normal request's answer and latency, or what went wrong.
async fn probe(gw: &Dyegate) -> String {
    let started = Instant::now();
    let Ok(Ok(mut c)) =
        tokio::time::timeout(Duration::from_secs(5), RawClient::try_connect(gw.addr())).await
    else {
        return "connect failed or took over 5 s".into();
    };
    if c.try_send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .is_err()
    {
        return "closed before the request was written".into();
    }
    let got = c.read_response(Duration::from_secs(5)).await;
    match got.status() {
        Some(status) => format!("{status} in {:?}", started.elapsed()),
        None => format!("no answer within 5 s (closed: {})", got.closed),
    }
}

/// 5,000 connections that send nothing, or `DYEGATE_FIGURES_SEND` (with h2c on, the default), then the same after the
/// gateway's timeouts: RSS and open descriptors before, with them, and 70 s later.
#[tokio::test]
async fn rss_with_5000_silent_connections() {
    let up = Upstream::start_unrecorded("stable");
    let gw = gateway(&up);
    let pid = gw.pid();
    let idle = rss_kib(pid);
    // DYEGATE_FIGURES_SEND: bytes each connection sends first (e.g. "GET / HT": tiny ones).
    let send = std::env::var("DYEGATE_FIGURES_SEND").unwrap_or_default();
    let mut conns = Vec::new();
    for _ in 0..5000 {
        let c = TcpStream::connect(gw.addr()).await.expect("connect");
        if !send.is_empty() {
            c.try_write(send.as_bytes()).expect("write");
        }
        conns.push(c);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with = rss_kib(pid);
    let fds_with = fds(pid);
    eprintln!(
        "RSS idle {idle} KiB; with 5,000 silent connections {with} KiB, {fds_with} fds; probe: {}",
        probe(&gw).await
    );
    for s in [15u64, 70] {
        tokio::time::sleep(Duration::from_secs(if s == 15 { 13 } else { 55 })).await;
        let closed = closed_by_gateway(&mut conns);
        eprintln!(
            "after {s} s: RSS {} KiB, {} fds, {closed} of 5,000 closed by the gateway",
            rss_kib(pid),
            fds(pid)
        );
    }
}

/// 5,000 keep-alive connections that made one request each and then stay idle: RSS with them,
/// and after `limits.idle_timeout_ms` (60 s by default).
#[tokio::test]
async fn rss_with_5000_idle_keepalive_connections() {
    let up = Upstream::start_unrecorded("stable");
    let gw = gateway(&up);
    let pid = gw.pid();
    let idle = rss_kib(pid);
    let mut conns = Vec::new();
    for _ in 0..5000 {
        let mut c = RawClient::connect(gw.addr()).await;
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        let got = c.read_response(Duration::from_secs(10)).await;
        assert_eq!(got.status(), Some(200), "{}", got.text());
        conns.push(c);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!(
        "RSS idle {idle} KiB; with 5,000 idle keep-alive connections {} KiB, {} fds",
        rss_kib(pid),
        fds(pid)
    );
    tokio::time::sleep(Duration::from_secs(65)).await;
    let mut closed = 0;
    for c in &mut conns {
        if c.read_to_close(Duration::from_millis(1)).await.closed {
            closed += 1;
        }
    }
    eprintln!(
        "after 67 s: RSS {} KiB, {} fds, {closed} of 5,000 closed by the gateway",
        rss_kib(pid),
        fds(pid)
    );
}

/// Opens up to `DYEGATE_FIGURES_CONNS` (default 19,000) silent connections as fast as
/// possible: descriptors of the gateway at its cap, refused connections, and whether a normal
/// client is still served.
#[tokio::test]
async fn fds_at_the_connection_cap() {
    let up = Upstream::start_unrecorded("stable");
    let gw = gateway(&up);
    let pid = gw.pid();
    let n: usize = std::env::var("DYEGATE_FIGURES_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(19_000);
    let mut conns = Vec::new();
    let mut failed = 0;
    for _ in 0..n {
        match TcpStream::connect(gw.addr()).await {
            Ok(c) => conns.push(c),
            Err(_) => failed += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let closed = closed_by_gateway(&mut conns);
    eprintln!(
        "{} connections opened ({failed} connects failed): gateway holds {} fds, closed {closed} at accept; RSS {} KiB; probe: {}",
        conns.len(),
        fds(pid),
        rss_kib(pid),
        probe(&gw).await
    );
    let scrape = gw.metrics().await;
    eprintln!(
        "dyegate_downstream_rejected_total{{listener=\"proxy\",reason=\"max_connections\"}} {:?}, dyegate_downstream_connections{{listener=\"proxy\"}} {:?}",
        scrape.get(
            "dyegate_downstream_rejected_total",
            &[("listener", "proxy"), ("reason", "max_connections")]
        ),
        scrape.get("dyegate_downstream_connections", &[("listener", "proxy")])
    );
    // The silent connections are closed at header_read_timeout_ms (10 s by default): then
    // normal clients are served again.
    tokio::time::sleep(Duration::from_secs(12)).await;
    eprintln!(
        "12 s later: gateway holds {} fds, {} of them closed; probe: {}",
        fds(pid),
        closed_by_gateway(&mut conns),
        probe(&gw).await
    );
    drop(conns);
}
