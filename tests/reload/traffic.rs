//! What traffic sees across a reload: a weight change shows in the realised split at once and
//! exactly, an unchanged split keeps its place in the smooth cycle, and a request in flight
//! finishes on the table (and upstream) it started with, even when the reload removes its route.

use std::time::{Duration, Instant};

use dyegate_suite::{upstream_groups, Conn, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;

const SETTLE: Duration = Duration::from_secs(5);

/// routes.yaml: route `shop` splitting between `shop-stable` and `shop-canary` by the given
/// weights, and a route `other` on path `/other` whose target is `other_target`.
fn shop_routes(
    stable: &Upstream,
    canary: &Upstream,
    weights: (u32, u32),
    other_target: &str,
) -> String {
    format!(
        "{}  other: {{ targets: [\"{other_target}\"] }}
routes:
  - name: other
    match: {{ path_prefix: /other }}
    split: [{{ upstream: other, weight: 1 }}]
  - name: shop
    split:
      - {{ upstream: shop-stable, weight: {} }}
      - {{ upstream: shop-canary, weight: {} }}
",
        upstream_groups(&[("shop-stable", stable), ("shop-canary", canary)]),
        weights.0,
        weights.1
    )
}

/// Sends `n` requests on one kept-alive connection; the upstream that answered each, in order.
async fn sequence(gw: &Dyegate, n: usize) -> Vec<String> {
    let mut conn = Conn::http1(gw.addr()).await;
    let mut order = Vec::with_capacity(n);
    for i in 0..n {
        let resp = conn.send(Req::get("/")).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}: {}", resp.text());
        order.push(resp.upstream().expect("x-upstream").to_owned());
    }
    order
}

fn canaries(order: &[String]) -> usize {
    order.iter().filter(|u| *u == "shop-canary").count()
}

/// Writes routes.yaml and waits (asking `/status`, not sending traffic that would move the
/// split) until `version` runs.
async fn reload_to(gw: &Dyegate, routes: &str, version: u64) {
    gw.config().write("routes.yaml", routes);
    gw.wait_for_status(SETTLE, &format!("version {version}"), |s| {
        s["version"] == version
    })
    .await;
}

#[tokio::test]
async fn a_weight_change_from_5_to_50_shows_exactly_in_the_realised_split() {
    let (stable, canary) = (
        Upstream::start("shop-stable"),
        Upstream::start("shop-canary"),
    );
    let gw = GatewayConfig::new(&shop_routes(&stable, &canary, (95, 5), "127.0.0.1:1")).start();

    // 200 requests are two whole smooth cycles of 100: exactly 5 + 5 canaries.
    let before = sequence(&gw, 200).await;
    assert_eq!(canaries(&before), 10, "{before:?}");

    // Changed weights start a fresh cycle (a position in the old cycle means nothing in the
    // new one), so 200 requests are again two whole cycles: exactly 50 + 50.
    reload_to(
        &gw,
        &shop_routes(&stable, &canary, (50, 50), "127.0.0.1:1"),
        2,
    )
    .await;
    let after = sequence(&gw, 200).await;
    assert_eq!(canaries(&after), 100, "{after:?}");
    // 50/50 smooth alternates.
    assert!(after.windows(2).all(|w| w[0] != w[1]), "{after:?}");
    assert_eq!(stable.request_count(), 190 + 100);
    assert_eq!(canary.request_count(), 10 + 100);
}

#[tokio::test]
async fn an_unchanged_split_keeps_its_place_in_the_cycle_across_a_reload() {
    let (stable, canary) = (
        Upstream::start("shop-stable"),
        Upstream::start("shop-canary"),
    );
    let gw = GatewayConfig::new(&shop_routes(&stable, &canary, (95, 5), "127.0.0.1:1")).start();

    // 130 requests, a reload that changes another route only, 70 more: the 200 answers are the
    // same two cycles as without the reload. Had the cycle restarted at 130, requests 130..200
    // would repeat 0..70 instead of 30..100, and the canaries fall elsewhere.
    let mut order = sequence(&gw, 130).await;
    reload_to(
        &gw,
        &shop_routes(&stable, &canary, (95, 5), "127.0.0.1:2"),
        2,
    )
    .await;
    order.extend(sequence(&gw, 70).await);

    assert_eq!(canaries(&order), 10, "{order:?}");
    assert_eq!(
        order[..100],
        order[100..],
        "the second cycle differs from the first"
    );
}

#[tokio::test]
async fn a_request_in_flight_finishes_on_its_upstream_while_a_reload_removes_its_route() {
    let slowpoke = Upstream::start("slowpoke");
    let other = Upstream::start("other");
    let both = format!(
        "{}routes:
  - name: slow
    match: {{ path_prefix: /slow }}
    split: [{{ upstream: slowpoke, weight: 1 }}]
  - name: api
    match: {{ path_prefix: /api }}
    split: [{{ upstream: other, weight: 1 }}]
",
        upstream_groups(&[("slowpoke", &slowpoke), ("other", &other)])
    );
    // The route and its upstream group are gone from the new file.
    let api_only = format!(
        "{}routes:
  - name: api
    match: {{ path_prefix: /api }}
    split: [{{ upstream: other, weight: 1 }}]
",
        upstream_groups(&[("other", &other)])
    );
    let gw = GatewayConfig::new(&both).start();

    let addr = gw.addr();
    let started = Instant::now();
    let in_flight = tokio::spawn(async move { Req::get("/slow?ms=2000").send(addr).await });
    // In flight = the upstream has it (so the gateway has decided and connected).
    assert!(
        dyegate_suite::wait_until_async(SETTLE, || async { slowpoke.request_count() == 1 }).await,
        "the slow request never reached its upstream\n{}",
        gw.logs()
    );

    reload_to(&gw, &api_only, 2).await;
    assert!(
        !in_flight.is_finished(),
        "the reload waited for the request in flight ({:?})",
        started.elapsed()
    );
    let late = Req::get("/slow?ms=1").send(gw.addr()).await;
    assert_eq!(late.status, StatusCode::NOT_FOUND, "{}", late.text());
    let api = Req::get("/api").send(gw.addr()).await;
    assert_eq!(api.upstream(), Some("other"));

    let resp = in_flight.await.expect("the in-flight request task");
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.upstream(), Some("slowpoke"));
    assert!(started.elapsed() >= Duration::from_millis(2000));
    assert_eq!(slowpoke.request_count(), 1);
}
