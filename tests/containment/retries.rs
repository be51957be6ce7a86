//! `routes[i].retries` and outlier ejection end to end, with upstreams that break for real: a
//! dead target in a two-target group costs no failed GET (retries carry the transition, then
//! ejection takes it out of the rotation); a POST whose body was sent is not retried; the
//! budget caps retries under a full outage; a target that closes every keep-alive connection
//! after one answer is neither a failure nor ejected.

use std::time::Duration;

use dyegate_suite::metrics::{Scrape, Series};
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{free_addr, Conn, Dyegate, Req};
use http::StatusCode;

fn routes(targets: &[String], upstream_extra: &str, retries: &str) -> String {
    let list = targets
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "upstreams:\n  shop: {{ targets: [{list}]{upstream_extra} }}\nroutes:\n  - name: shop\n    retries: {retries}\n    split: [{{ upstream: shop, weight: 1 }}]\n"
    )
}

fn retries_total(route: &str, reason: &str) -> Series {
    Series::new(
        "dyegate_retries_total",
        &[("reason", reason), ("route", route)],
    )
}

/// Sends `n` GETs, each on a fresh connection (a failed request closes its connection), and
/// returns the statuses.
async fn gets(gw: &Dyegate, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Req::get("/").send(gw.addr()).await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn a_dead_target_costs_no_failed_get_and_is_ejected() {
    let ok = FaultyUpstream::start("ok", Fault::None);
    let failing = FaultyUpstream::start("failing", Fault::Status500);
    let gw = Dyegate::start(&routes(
        &[ok.target(), failing.target()],
        ", outlier: { consecutive_failures: 3, eject_ms: 30000 }",
        "{ attempts: 1, on: [connect_failure, reset, \"500\"] }",
    ));
    let statuses = gets(&gw, 40).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Ejected after 3 failures in a row: the failing target saw no more than those.
    assert_eq!(failing.request_count(), 3, "requests to the failing target");
    assert_eq!(ok.request_count(), 40);
    let scrape = gw.metrics().await;
    assert_eq!(
        scrape.at(&retries_total("shop", "500")),
        Some(3.0),
        "{}",
        scrape.dump("dyegate_retries_total")
    );
    assert_eq!(
        scrape.get(
            "dyegate_ejections_total",
            &[("target", &failing.target()), ("upstream_group", "shop")]
        ),
        Some(1.0)
    );
    // The gauge is published by the health service on its next tick, not at the ejection.
    let healthy = |s: &Scrape| {
        s.get(
            "dyegate_target_healthy",
            &[("target", &failing.target()), ("upstream_group", "shop")],
        )
    };
    gw.wait_for_metrics(
        Duration::from_secs(10),
        "the ejected target shown unhealthy",
        |s| healthy(s) == Some(0.0),
    )
    .await;
}

#[tokio::test]
async fn a_killed_target_costs_no_failed_get_then_serves_again_after_restart() {
    let ok = FaultyUpstream::start("ok", Fault::None);
    let victim = FaultyUpstream::start("victim", Fault::None);
    let addr = victim.addr();
    let gw = Dyegate::start(&routes(
        &[ok.target(), victim.target()],
        ", outlier: { consecutive_failures: 2, eject_ms: 300 }",
        "{ attempts: 1 }",
    ));
    let before = gets(&gw, 10).await;
    assert!(before.iter().all(|s| *s == 200), "{before:?}");
    assert!(victim.request_count() > 0);
    drop(victim); // killed: connections refused from now on
    let during = gets(&gw, 30).await;
    assert!(during.iter().all(|s| *s == 200), "{during:?}");
    let revived = FaultyUpstream::start_on(addr, "victim", Fault::None).expect("rebinding");
    // Ejections run out (300 ms, doubled at most 10 times): it serves again.
    let back = dyegate_suite::wait_until_async(Duration::from_secs(10), || async {
        gets(&gw, 4).await;
        revived.request_count() > 0
    })
    .await;
    assert!(back, "the restarted target got no request");
}

#[tokio::test]
async fn a_post_whose_body_was_sent_is_not_retried() {
    let a = FaultyUpstream::start("a", Fault::ResetBeforeResponse);
    let b = FaultyUpstream::start("b", Fault::ResetBeforeResponse);
    let gw = Dyegate::start(&routes(
        &[a.target(), b.target()],
        "",
        "{ attempts: 2, on: [connect_failure, reset] }",
    ));
    let resp = Req::post("/").body("order=1").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY, "{}", resp.text());
    assert_eq!(
        a.request_count() + b.request_count(),
        1,
        "the POST reached one upstream once"
    );
    // The same failure on a GET is retried on the other target (attempts: 2, but a retry
    // never goes to a target already tried).
    let (a0, b0) = (a.request_count(), b.request_count());
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        (a.request_count() - a0, b.request_count() - b0),
        (1, 1),
        "each target once"
    );
}

#[tokio::test]
async fn a_post_that_never_reached_the_upstream_is_retried() {
    let ok = FaultyUpstream::start("ok", Fault::None);
    let dead = free_addr().to_string();
    // Two POSTs: at most two retries, within the floor of the budget of a quiet route.
    let gw = Dyegate::start(&routes(&[dead, ok.target()], "", "{ attempts: 1 }"));
    for _ in 0..2 {
        let resp = Req::post("/").body("order=1").send(gw.addr()).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    }
    assert_eq!(ok.request_count(), 2);
    assert_eq!(ok.body_bytes(), 2 * "order=1".len());
}

#[tokio::test]
async fn a_body_larger_than_the_replay_buffer_is_not_retried() {
    let a = FaultyUpstream::start("a", Fault::ResetBeforeResponse);
    let b = FaultyUpstream::start("b", Fault::ResetBeforeResponse);
    let gw = Dyegate::start(&routes(
        &[a.target(), b.target()],
        "",
        "{ attempts: 2, on: [reset] }",
    ));
    // PUT is idempotent, but 256 KiB is past the 64 KiB Pingora keeps for a replay.
    let big = vec![b'x'; 256 * 1024];
    let resp = Req::new(http::Method::PUT, "/")
        .body(big)
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY);
    assert_eq!(a.request_count() + b.request_count(), 1);
    // A small PUT is replayed.
    let resp = Req::new(http::Method::PUT, "/")
        .body("small")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY);
    assert_eq!(a.request_count() + b.request_count(), 1 + 2);
}

#[tokio::test]
async fn the_budget_caps_retries_under_a_full_outage() {
    let a = FaultyUpstream::start("a", Fault::Status503);
    let b = FaultyUpstream::start("b", Fault::Status503);
    let gw = Dyegate::start(&routes(
        &[a.target(), b.target()],
        "",
        "{ attempts: 2, on: [\"503\"], budget_percent: 20 }",
    ));
    const N: usize = 150;
    let statuses = gets(&gw, N).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    let seen = a.request_count() + b.request_count();
    // At most (1 + 20%) x requests, plus the floor of 3 retries a window always allows.
    assert!(
        seen <= N + N / 5 + 3,
        "upstreams saw {seen} requests for {N}"
    );
    assert!(seen > N, "some retries were made: {seen}");
    let scrape = gw.metrics().await;
    let exhausted = scrape
        .get(
            "dyegate_retries_budget_exhausted_total",
            &[("route", "shop")],
        )
        .unwrap_or(0.0);
    assert!(
        exhausted > 0.0,
        "{}",
        scrape.dump("dyegate_retries_budget_exhausted_total")
    );
    assert_eq!(
        scrape.at(&retries_total("shop", "503")),
        Some((seen - N) as f64)
    );
}

#[tokio::test]
async fn a_target_closing_every_keepalive_connection_is_not_a_failure() {
    let closer = FaultyUpstream::start("closer", Fault::CloseAfterOne);
    let gw = Dyegate::start(&routes(
        &[closer.target()],
        ", outlier: { consecutive_failures: 1 }",
        "{ attempts: 0 }",
    ));
    let mut conn = Conn::http1(gw.addr()).await;
    for i in 0..30 {
        let resp = conn.send(Req::get("/")).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}: {}", resp.text());
    }
    let scrape = gw.metrics().await;
    assert_eq!(scrape.sum("dyegate_ejections_total", &[]), 0.0);
}

#[tokio::test]
async fn retries_off_means_one_try() {
    let a = FaultyUpstream::start("a", Fault::Status503);
    let b = FaultyUpstream::start("b", Fault::Status503);
    let gw = Dyegate::start(&routes(
        &[a.target(), b.target()],
        "",
        "{ attempts: 0, on: [\"503\"] }",
    ));
    let statuses = gets(&gw, 10).await;
    assert!(statuses.iter().all(|s| *s == 503));
    assert_eq!(a.request_count() + b.request_count(), 10);
}
