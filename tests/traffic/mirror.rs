//! Shadow traffic (issue 31), end to end: copies arrive as the real request went upstream plus
//! `x-dyegate-mirror: 1`; `percent: 10` copies exactly 100 of 1,000 requests; a shadow that
//! hangs costs the client nothing. Real gateway, real upstreams.

use std::time::Duration;

use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{wait_until, GatewayConfig, Req, Upstream};
use http::StatusCode;

fn routes(stable: &str, shadow: &str, mirror: &str) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{stable}\"] }}\n  shadow: {{ targets: [\"{shadow}\"] }}\n\
         routes:\n  - name: shop\n    split: [{{ upstream: stable, weight: 1 }}]\n    mirror: [{mirror}]\n"
    )
}

async fn mirror_total(gw: &dyegate_suite::Dyegate, outcome: &str) -> u64 {
    let text = Req::get("/metrics").send(gw.admin_addr()).await.text();
    let prefix = format!(
        "dyegate_mirror_requests_total{{group=\"shadow\",outcome=\"{outcome}\",route=\"shop\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().expect("counter"))
}

#[tokio::test]
async fn copies_arrive_as_the_request_went_upstream_plus_the_marker() {
    let (stable, shadow) = (Upstream::start("stable"), Upstream::start("shadow"));
    let gw = GatewayConfig::new(&routes(
        &stable.target(),
        &shadow.target(),
        "{ upstream: shadow, percent: 100 }",
    ))
    .start();
    for i in 0..200 {
        let resp = Req::get(&format!("/items/{i}?q={i}&x=y"))
            .header("x-client", &format!("c{i}"))
            .send(gw.addr())
            .await;
        assert_eq!(resp.status, StatusCode::OK);
    }
    assert!(
        wait_until(Duration::from_secs(30), || shadow.request_count() == 200),
        "shadow saw {} of 200",
        shadow.request_count()
    );
    let real = stable.requests();
    let copies = shadow.requests();
    for (i, copy) in copies.iter().enumerate() {
        let path = copy.path.clone();
        let original = real
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("copy {i} of {path} has no original"));
        assert_eq!(copy.method, original.method);
        assert_eq!(copy.query, original.query);
        assert_eq!(copy.header("x-dyegate-mirror"), Some("1"));
        assert_eq!(original.header("x-dyegate-mirror"), None);
        let without_marker: Vec<_> = (copy.headers.iter())
            .filter(|(n, _)| n != "x-dyegate-mirror")
            .cloned()
            .collect();
        assert_eq!(without_marker, original.headers, "{path}");
    }
    assert_eq!(mirror_total(&gw, "sent").await, 200);
}

#[tokio::test]
async fn ten_percent_of_1000_requests_is_exactly_100_copies() {
    let (stable, shadow) = (Upstream::start("stable"), Upstream::start("shadow"));
    let gw = GatewayConfig::new(&routes(
        &stable.target(),
        &shadow.target(),
        "{ upstream: shadow, percent: 10 }",
    ))
    .start();
    for i in 0..1000 {
        let resp = Req::get(&format!("/p/{i}")).send(gw.addr()).await;
        assert_eq!(resp.status, StatusCode::OK);
    }
    assert!(wait_until(Duration::from_secs(30), || {
        shadow.request_count() >= 100
    }));
    let mut sent = 0;
    assert!(
        wait_until_async_sent(&gw, &mut sent).await,
        "sent {sent}, expected 100"
    );
    assert_eq!(shadow.request_count(), 100);
    assert_eq!(stable.request_count(), 1000);
}

/// Waits until every copy has been counted `sent` (100 of them).
async fn wait_until_async_sent(gw: &dyegate_suite::Dyegate, sent: &mut u64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        *sent = mirror_total(gw, "sent").await;
        if *sent == 100 {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

#[tokio::test]
async fn a_hanging_shadow_costs_the_client_no_failed_request() {
    let stable = Upstream::start("stable");
    let shadow = FaultyUpstream::start("shadow", Fault::Hang);
    let gw = GatewayConfig::new(&routes(
        &stable.target(),
        &shadow.target(),
        "{ upstream: shadow, percent: 100, timeout_ms: 200, max_in_flight: 8 }",
    ))
    .start();
    for i in 0..100 {
        let resp = Req::get(&format!("/h/{i}")).send(gw.addr()).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}");
    }
    assert_eq!(stable.request_count(), 100);
    // Every copy ended: timed out, or dropped while 8 were in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ended = mirror_total(&gw, "shadow_timeout").await + mirror_total(&gw, "dropped").await;
        if ended == 100 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{ended} of 100 copies ended"
        );
        tokio::task::yield_now().await;
    }
    assert!(mirror_total(&gw, "shadow_timeout").await >= 1);
}
