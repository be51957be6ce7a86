//! `max_in_flight` (the circuit breaker) and `x-dyegate-decision` end to end: past the limit a
//! request is answered 503 with `retry-after` at once, nothing queued, and counted; the decision
//! header goes only to trusted peers that ask for it.

use std::time::{Duration, Instant};

use dyegate_suite::metrics::Series;
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{wait_until_async, Dyegate, GatewayConfig, Req};
use http::StatusCode;

#[tokio::test]
async fn past_max_in_flight_requests_get_503_at_once() {
    let slow = FaultyUpstream::start("slow", Fault::Hang);
    let gw = Dyegate::start(&format!(
        "upstreams:\n  slow: {{ targets: [\"{}\"], max_in_flight: 2 }}\nroutes:\n  - name: shop\n    timeouts: {{ read_ms: 3000 }}\n    split: [{{ upstream: slow, weight: 1 }}]\n",
        slow.target()
    ));
    let addr = gw.addr();
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { Req::get("/").send(addr).await.status }))
        .collect();
    let both = wait_until_async(Duration::from_secs(5), || async {
        slow.request_count() == 2
    })
    .await;
    assert!(both, "{}", gw.logs());
    let started = Instant::now();
    let resp = Req::get("/")
        .header("x-dyegate-debug", "1")
        .send(addr)
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(resp.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(
        resp.text().lines().next(),
        Some("503 Service Unavailable: upstream group slow is at max_in_flight")
    );
    assert_eq!(
        resp.header("x-dyegate-decision"),
        Some("route=shop; group=slow; reason=circuit_open; tag=none; target=none; version=1; tries=0; match=any; miss=none")
    );
    assert_eq!(slow.request_count(), 2, "nothing queued or sent");
    gw.wait_for_metrics(Duration::from_secs(5), "a circuit_open count", |s| {
        s.at(&Series::new(
            "dyegate_circuit_open_total",
            &[("upstream_group", "slow")],
        )) == Some(1.0)
            && s.get(
                "dyegate_decisions_total",
                &[
                    ("reason", "circuit_open"),
                    ("route", "shop"),
                    ("upstream_group", "slow"),
                ],
            ) == Some(1.0)
    })
    .await;
    // The held requests end (504 after read_ms), and the group takes requests again.
    for h in held {
        assert_eq!(h.await.expect("request task"), StatusCode::GATEWAY_TIMEOUT);
    }
    slow.set_fault(Fault::None);
    assert_eq!(Req::get("/").send(addr).await.status, StatusCode::OK);
    // A request leaves the count when its context is dropped, after the answer went out.
    let idle = wait_until_async(Duration::from_secs(5), || async {
        gw.admin_get("/upstreams").await["groups"][0]["in_flight"] == 0
    })
    .await;
    let upstreams = gw.admin_get("/upstreams").await;
    assert!(idle, "{upstreams:#}");
    assert_eq!(upstreams["groups"][0]["max_in_flight"], 2, "{upstreams:#}");
}

const ROUTES: &str = "upstreams:\n  a: { targets: [\"TARGET\"] }\nroutes:\n  - name: shop\n    dye: { tags: { beta: a } }\n    split: [{ upstream: a, weight: 1 }]\n";

#[tokio::test]
async fn the_decision_header_goes_to_trusted_peers_that_ask() {
    let up = FaultyUpstream::start("a", Fault::None);
    let gw = Dyegate::start(&ROUTES.replace("TARGET", &up.target()));
    let resp = Req::get("/")
        .header("x-dyegate-debug", "1")
        .send(gw.addr())
        .await;
    assert_eq!(
        resp.header("x-dyegate-decision"),
        Some(
            format!(
                "route=shop; group=a; reason=split; tag=beta; target={}; version=1; tries=1; match=any; miss=none",
                up.target()
            )
            .as_str()
        )
    );
    let resp = Req::get("/")
        .header("x-dyegate-debug", "1")
        .header("x-env-tag", "beta")
        .send(gw.addr())
        .await;
    assert!(resp
        .header("x-dyegate-decision")
        .is_some_and(|d| d.contains("reason=tag; tag=beta")));
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.header("x-dyegate-decision"), None, "not asked");
}

#[tokio::test]
async fn untrusted_peers_get_no_decision_header() {
    let up = FaultyUpstream::start("a", Fault::None);
    let gw = GatewayConfig::new(&ROUTES.replace("TARGET", &up.target()))
        .with_gateway_extra("debug: { trusted_sources: [10.0.0.0/8] }\n")
        .start();
    let resp = Req::get("/")
        .header("x-dyegate-debug", "1")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.header("x-dyegate-decision"), None);
}

#[tokio::test]
async fn no_route_and_errors_carry_the_decision_too() {
    let dead = dyegate_suite::free_addr().to_string();
    let gw = Dyegate::start(&format!(
        "upstreams:\n  a: {{ targets: [\"{dead}\"] }}\nroutes:\n  - name: shop\n    match: {{ path_prefix: /shop }}\n    retries: {{ attempts: 0 }}\n    split: [{{ upstream: a, weight: 1 }}]\n"
    ));
    let resp = Req::get("/elsewhere")
        .header("x-dyegate-debug", "1")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(
        resp.header("x-dyegate-decision"),
        Some("route=none; group=none; reason=no_route; tag=none; target=none; version=1; tries=0; match=none; miss=none")
    );
    let resp = Req::get("/shop")
        .header("x-dyegate-debug", "1")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        resp.header("x-dyegate-decision"),
        Some(
            format!(
                "route=shop; group=a; reason=split; tag=none; target={dead}; version=1; tries=1; match=path; miss=none"
            )
            .as_str()
        )
    );
}
