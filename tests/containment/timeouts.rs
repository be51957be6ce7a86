//! `routes[i].timeouts` end to end: an upstream that accepts and never answers gets a 504 within
//! `read_ms` (plus slack), `total_ms` bounds the whole request, a body that stalls after the
//! head is cut off after `read_ms` (and counted with `status_class="error"`), and every timeout
//! is counted by route and kind.

use std::time::{Duration, Instant};

use dyegate_suite::metrics::{requests_total, Series};
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{wait_until, Conn, Dyegate, GatewayConfig, Req};
use http::StatusCode;

/// Room for a loaded two-core machine on top of a timeout.
const SLACK: Duration = Duration::from_millis(1500);

fn routes(target: &str, timeouts: &str) -> String {
    format!(
        "upstreams:\n  slow: {{ targets: [\"{target}\"] }}\nroutes:\n  - name: shop\n    timeouts: {timeouts}\n    split: [{{ upstream: slow, weight: 1 }}]\n"
    )
}

fn gateway(target: &str, timeouts: &str) -> Dyegate {
    Dyegate::start(&routes(target, timeouts))
}

fn timeouts_total(route: &str, kind: &str) -> Series {
    Series::new(
        "dyegate_timeouts_total",
        &[("kind", kind), ("route", route)],
    )
}

#[tokio::test]
async fn a_hung_upstream_answers_504_within_read_ms() {
    let hung = FaultyUpstream::start("hung", Fault::Hang);
    let gw = gateway(&hung.target(), "{ read_ms: 300 }");

    let started = Instant::now();
    let resp = Req::get("/").send(gw.addr()).await;
    let took = started.elapsed();
    assert_eq!(resp.status, StatusCode::GATEWAY_TIMEOUT, "{}", resp.text());
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(300) + SLACK,
        "504 after {took:?}, expected read_ms 300 (+ slack)"
    );
    assert_eq!(hung.request_count(), 1, "no retry by default on a timeout");
    gw.wait_for_metrics(Duration::from_secs(5), "a read timeout", |s| {
        s.at(&timeouts_total("shop", "read")) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn total_ms_bounds_the_request_before_read_ms() {
    let hung = FaultyUpstream::start("hung", Fault::Hang);
    let gw = gateway(&hung.target(), "{ read_ms: 10000, total_ms: 400 }");

    let started = Instant::now();
    let resp = Req::get("/").send(gw.addr()).await;
    let took = started.elapsed();
    assert_eq!(resp.status, StatusCode::GATEWAY_TIMEOUT, "{}", resp.text());
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(400) + SLACK,
        "504 after {took:?}, expected total_ms 400 (+ slack)"
    );
}

#[tokio::test]
async fn a_body_that_stalls_after_the_head_is_cut_off_after_read_ms() {
    let stall = FaultyUpstream::start("stall", Fault::StallBody);
    let gw = GatewayConfig::new(&routes(&stall.target(), "{ read_ms: 300 }"))
        .with_gateway_extra("access_log: { path: access.log }\n")
        .start();

    let started = Instant::now();
    let mut conn = Conn::http1(gw.addr()).await;
    let result = conn.try_send(Req::get("/")).await;
    let took = started.elapsed();
    // The head (200) went out before the stall: the body breaks off instead.
    assert!(
        result.is_err(),
        "a stalled body must not end cleanly: {result:?}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(300) + SLACK,
        "cut off after {took:?}, expected read_ms 300 (+ slack)"
    );
    // Counted as a read timeout, and as a request that broke after its head (not a 2xx).
    let requests = |class| requests_total("shop", "slow", "none", class);
    gw.wait_for_metrics(Duration::from_secs(5), "a read timeout", |s| {
        s.at(&timeouts_total("shop", "read")) == Some(1.0)
            && s.at(&requests("error")) == Some(1.0)
            && s.at(&requests("2xx")) == Some(0.0)
    })
    .await;
    // The access log keeps the status the client got, and says the answer broke.
    let log = gw.config().path("access.log");
    let mut line = serde_json::Value::Null;
    let logged = wait_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        line = text
            .lines()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        !line.is_null()
    });
    assert!(logged, "no line in {}", log.display());
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["broken"], true, "{line}");
}

#[tokio::test]
async fn a_healthy_upstream_within_its_timeouts_is_unaffected() {
    let ok = FaultyUpstream::start("ok", Fault::None);
    let gw = gateway(
        &ok.target(),
        "{ connect_ms: 500, read_ms: 300, write_ms: 300, total_ms: 2000 }",
    );
    let mut conn = Conn::http1(gw.addr()).await;
    for _ in 0..5 {
        let resp = conn.send(Req::get("/")).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        assert_eq!(resp.upstream(), Some("ok"));
    }
    let scrape = gw.metrics().await;
    assert_eq!(scrape.sum("dyegate_timeouts_total", &[]), 0.0);
}
