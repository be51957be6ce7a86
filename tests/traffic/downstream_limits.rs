//! gateway.yaml `limits` end to end, with raw TCP clients: every connection is bounded in time
//! before its first request (h2c on, the default, included), the 18-byte HTTP/1.0 request is
//! answered, idle keep-alive connections close at `idle_timeout_ms`, slowloris clients are
//! closed without delaying others, heads over the limit get 431, connections past
//! `max_connections` are closed at accept, `keepalive_requests` is honoured; each refusal is
//! counted in `dyegate_downstream_rejected_total{listener="proxy",reason}`.

use std::time::Duration;

use dyegate_suite::metrics::Series;
use dyegate_suite::raw::RawClient;
use dyegate_suite::{Dyegate, GatewayConfig, Req, Upstream};

/// Room for a loaded two-core machine on top of a timeout.
const SLACK: Duration = Duration::from_millis(2000);

fn routes(up: &Upstream) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target()
    )
}

fn gateway(up: &Upstream, limits: &str) -> Dyegate {
    let config = GatewayConfig::new(&routes(up));
    if limits.is_empty() {
        config.start()
    } else {
        config
            .with_gateway_extra(&format!("limits: {limits}\n"))
            .start()
    }
}

/// The proxy listeners' series (the admin listener has its own).
const PROXY: &[(&str, &str)] = &[("listener", "proxy")];

fn rejected(reason: &str) -> Series {
    Series::new(
        "dyegate_downstream_rejected_total",
        &[("listener", "proxy"), ("reason", reason)],
    )
}

#[tokio::test]
async fn the_18_byte_http10_request_is_answered_with_h2c_on() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "");
    let mut c = RawClient::connect(gw.addr()).await;
    c.send(b"GET / HTTP/1.0\r\n\r\n").await;
    let got = c.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(got.status(), Some(200), "answer: {:?}", got.text());
    assert!(
        got.closed,
        "HTTP/1.0 without keep-alive closes after the answer"
    );
    assert!(got.text().contains("x-upstream: stable"), "{}", got.text());
}

#[tokio::test]
async fn h2c_prior_knowledge_still_works() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "");
    let mut conn = dyegate_suite::Conn::h2c(gw.addr()).await;
    for _ in 0..3 {
        let resp = conn.send(Req::get("/")).await;
        assert_eq!(resp.status, http::StatusCode::OK);
        assert_eq!(resp.upstream(), Some("stable"));
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_header_read_timeout() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "{ header_read_timeout_ms: 500 }");
    let mut c = RawClient::connect(gw.addr()).await;
    let got = c.read_to_close(Duration::from_millis(500) + SLACK).await;
    assert!(got.closed, "still open after {:?}", got.after);
    assert!(
        got.after >= Duration::from_millis(400),
        "closed after {:?}, before the timeout",
        got.after
    );
    assert!(got.bytes.is_empty(), "nothing to answer: {:?}", got.text());
    // A few bytes short of the h2c preface's 24: bounded the same way (answered 408).
    let mut c = RawClient::connect(gw.addr()).await;
    c.send(b"GET / HT").await;
    let got = c.read_to_close(Duration::from_millis(500) + SLACK).await;
    assert!(got.closed, "still open after {:?}", got.after);
    assert_eq!(got.status(), Some(408), "{}", got.text());
    gw.wait_for_metrics(Duration::from_secs(5), "two slow_headers", |s| {
        s.at(&rejected("slow_headers")) == Some(2.0)
    })
    .await;
}

#[tokio::test]
async fn an_idle_keepalive_connection_is_closed_at_idle_timeout() {
    let up = Upstream::start("stable");
    let gw = gateway(
        &up,
        "{ idle_timeout_ms: 800, header_read_timeout_ms: 5000 }",
    );
    let mut c = RawClient::connect(gw.addr()).await;
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let first = c.read_response(Duration::from_secs(5)).await;
    assert_eq!(first.status(), Some(200), "{}", first.text());
    // Still usable within the idle timeout...
    // time is tested: the connection is still usable 300 ms into its 800 ms idle timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let second = c.read_response(Duration::from_secs(5)).await;
    assert_eq!(second.status(), Some(200), "{}", second.text());
    // ...and closed once idle for it.
    let got = c.read_to_close(Duration::from_millis(800) + SLACK).await;
    assert!(
        got.closed,
        "idle connection still open after {:?}",
        got.after
    );
    assert!(
        got.after >= Duration::from_millis(600),
        "closed after {:?}, before the idle timeout",
        got.after
    );
    let scrape = gw.metrics().await;
    assert_eq!(
        scrape.sum(
            "dyegate_downstream_rejected_total",
            &[("listener", "proxy")]
        ),
        0.0,
        "an idle keep-alive close is no rejection"
    );
}

#[tokio::test]
async fn slowloris_connections_are_closed_without_delaying_others() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "{ header_read_timeout_ms: 1500 }");
    let addr = gw.addr();
    // 200 clients sending their head one byte every 100 ms: never complete within 1.5 s.
    let mut slow = Vec::new();
    for _ in 0..200 {
        slow.push(tokio::spawn(async move {
            let mut c = RawClient::connect(addr).await;
            let head = b"GET / HTTP/1.1\r\nHost: a\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
            let started = std::time::Instant::now();
            for b in head {
                if c.try_send(&[*b]).await.is_err() {
                    return Some(started.elapsed());
                }
                // time is tested: a slowloris client: one byte of its head every 100 ms.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        }));
    }
    // Once the gateway holds the 200 slow connections, a normal client is served promptly,
    // request after request.
    gw.wait_for_metrics(Duration::from_secs(10), "200 slow clients connected", |s| {
        s.get("dyegate_downstream_connections", PROXY) >= Some(200.0)
    })
    .await;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let resp = Req::get("/").send(addr).await;
        assert_eq!(resp.status, http::StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "a normal request took {:?} next to 200 slow clients",
            started.elapsed()
        );
    }
    for s in slow {
        let cut = s.await.expect("slow client task");
        let cut = cut.expect("a slowloris client finished its head: it was never cut off");
        assert!(
            cut < Duration::from_millis(1500) + SLACK + Duration::from_millis(1000),
            "slow client cut off only after {cut:?}"
        );
    }
    gw.wait_for_metrics(Duration::from_secs(5), "200 slow_headers", |s| {
        s.at(&rejected("slow_headers")) == Some(200.0)
    })
    .await;
}

#[tokio::test]
async fn a_head_over_the_limit_gets_431() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "{ max_request_header_bytes: 4096 }");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nx-big: {}\r\n\r\n",
        "b".repeat(8000)
    );
    let mut c = RawClient::connect(gw.addr()).await;
    c.send(big.as_bytes()).await;
    let got = c.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(got.status(), Some(431), "{}", got.text());
    assert!(got.closed);
    // Just under the limit is served.
    let fits = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nx-big: {}\r\n\r\n",
        "b".repeat(3900)
    );
    let mut c = RawClient::connect(gw.addr()).await;
    c.send(fits.as_bytes()).await;
    let got = c.read_response(Duration::from_secs(5)).await;
    assert_eq!(got.status(), Some(200), "{}", got.text());
    assert_eq!(up.request_count(), 1, "the 431 request never went upstream");
    gw.wait_for_metrics(Duration::from_secs(5), "one header_too_large", |s| {
        s.at(&rejected("header_too_large")) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn past_max_connections_new_connections_are_closed_at_accept() {
    let up = Upstream::start("stable");
    let gw = gateway(
        &up,
        "{ max_connections: 50, header_read_timeout_ms: 30000 }",
    );
    // The start's readiness probe (a connection opened and dropped) holds a slot until the
    // gateway sees it closed: wait for it to go, so that the 50 below fill the cap exactly.
    gw.wait_for_metrics(Duration::from_secs(5), "no connection open", |s| {
        s.get("dyegate_downstream_connections", PROXY) == Some(0.0)
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(RawClient::connect(gw.addr()).await);
    }
    gw.wait_for_metrics(Duration::from_secs(5), "50 open", |s| {
        s.get("dyegate_downstream_connections", PROXY) == Some(50.0)
    })
    .await;
    let fds_at_cap = std::fs::read_dir(format!("/proc/{}/fd", gw.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    eprintln!("fds of dyegate with 50 connections held at the cap of 50: {fds_at_cap}");
    // The 51st is accepted by the kernel and closed at once, without an answer.
    let mut extra = RawClient::connect(gw.addr()).await;
    let _ = extra.try_send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let got = extra.read_to_close(Duration::from_secs(5)).await;
    assert!(got.closed, "connection past the cap still open");
    assert!(got.bytes.is_empty(), "{}", got.text());
    // The metrics (admin listener) still answer, and once one is freed, new clients are served.
    gw.wait_for_metrics(Duration::from_secs(5), "a max_connections rejection", |s| {
        s.at(&rejected("max_connections")) >= Some(1.0)
    })
    .await;
    drop(held.pop());
    let served = dyegate_suite::wait_until_async(Duration::from_secs(5), || async {
        let mut c = RawClient::connect(gw.addr()).await;
        if c.try_send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .is_err()
        {
            return false;
        }
        c.read_response(Duration::from_secs(2)).await.status() == Some(200)
    })
    .await;
    assert!(served, "no client served after a slot was freed");
}

#[tokio::test]
async fn keepalive_requests_are_honoured() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "{ keepalive_requests: 3 }");
    let mut c = RawClient::connect(gw.addr()).await;
    for i in 1..=3 {
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        let got = c.read_response(Duration::from_secs(5)).await;
        assert_eq!(got.status(), Some(200), "request {i}: {}", got.text());
        let close = got
            .text()
            .to_ascii_lowercase()
            .contains("connection: close");
        assert_eq!(close, i == 3, "request {i}: {}", got.text());
    }
    let got = c.read_to_close(Duration::from_secs(5)).await;
    assert!(got.closed, "still open after keepalive_requests");
    assert_eq!(up.request_count(), 3);
}

#[tokio::test]
async fn an_idle_h2c_connection_is_closed_at_idle_timeout() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "{ idle_timeout_ms: 800 }");
    let mut conn = dyegate_suite::Conn::h2c(gw.addr()).await;
    let resp = conn.send(Req::get("/")).await;
    assert_eq!(resp.status, http::StatusCode::OK);
    let closed = dyegate_suite::wait_until_async(Duration::from_millis(800) + SLACK, || {
        let closed = conn.is_closed();
        async move { closed }
    })
    .await;
    assert!(closed, "idle h2c connection still open");
}

#[tokio::test]
async fn an_h2c_preface_then_silence_is_closed() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "{ idle_timeout_ms: 800, header_read_timeout_ms: 800 }");
    let mut c = RawClient::connect(gw.addr()).await;
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let got = c.read_to_close(Duration::from_millis(800) + SLACK).await;
    assert!(
        got.closed,
        "h2c connection with no stream still open after {:?}",
        got.after
    );
}
