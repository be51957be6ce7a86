//! Rate limits per route and per tagged lane (issue 17), end to end: `429` with `retry-after`,
//! counted in `dyegate_rate_limited_total{route}`, keys kept apart, nothing refused reaching the
//! upstream; located config errors. Real gateway, real upstreams.

use std::net::IpAddr;

use dyegate_suite::{GatewayConfig, Req, Upstream};
use http::StatusCode;

fn routes(stable: &Upstream, canary: &Upstream, limits: &str, dye_limits: &str) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: all\n    dye: {{ tags: {{ canary: canary }}{dye_limits} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n{limits}",
        stable.target(),
        canary.target()
    )
}

/// `n` requests as fast as one client sends them; the statuses.
async fn burst(gw: &dyegate_suite::Dyegate, n: usize, req: impl Fn() -> Req) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for _ in 0..n {
        let resp = req().send(gw.addr()).await;
        if resp.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(resp.header("retry-after"), Some("1"));
        }
        out.push(resp.status);
    }
    out
}

fn count(statuses: &[StatusCode], s: StatusCode) -> usize {
    statuses.iter().filter(|x| **x == s).count()
}

async fn rate_limited_total(gw: &dyegate_suite::Dyegate, route: &str) -> u64 {
    let text = Req::get("/metrics").send(gw.admin_addr()).await.text();
    let prefix = format!("dyegate_rate_limited_total{{route=\"{route}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().expect("counter"))
}

#[tokio::test]
async fn a_client_past_its_rate_gets_429_and_others_do_not() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let gw = GatewayConfig::new(&routes(
        &stable,
        &canary,
        "    limits: { rate_per_s: 5, burst: 3, key: client_ip }\n",
        "",
    ))
    .start();
    let one: IpAddr = [127, 0, 0, 1].into();
    let two: IpAddr = [127, 0, 0, 2].into();
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..30 {
        statuses.push(Req::get("/").send_from(one, gw.addr()).await.status);
    }
    let seconds = started.elapsed().as_secs() as usize;
    let ok = count(&statuses, StatusCode::OK);
    let limited = count(&statuses, StatusCode::TOO_MANY_REQUESTS);
    // 8 (rate + burst) within a second; a slow box stretches the 30 requests over more
    // seconds, each bringing at most 8 more.
    let most = 8 * (seconds + 2);
    assert!(
        (8..=most).contains(&ok),
        "{ok} answered of 30 in {seconds} s: {statuses:?}"
    );
    assert_eq!(ok + limited, 30, "{statuses:?}");
    // Nothing refused reached the upstream.
    assert_eq!(stable.request_count(), ok);
    // Another client has its own allowance.
    let other = Req::get("/").send_from(two, gw.addr()).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(rate_limited_total(&gw, "all").await, limited as u64);
}

#[tokio::test]
async fn header_keys_and_tagged_lanes_have_their_own_limits() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let gw = GatewayConfig::new(&routes(
        &stable,
        &canary,
        "    limits: { rate_per_s: 1000, key: \"header:x-user\" }\n",
        ", limits: { rate_per_s: 3, key: route }",
    ))
    .start();
    // The canary lane: 3 tagged requests a second, whoever sends them.
    let started = std::time::Instant::now();
    let tagged = burst(&gw, 12, || {
        Req::get("/")
            .header("x-env-tag", "canary")
            .header("x-user", "u1")
    })
    .await;
    let ok = count(&tagged, StatusCode::OK);
    let most = 3 * (started.elapsed().as_secs() as usize + 2);
    assert!((3..=most).contains(&ok), "{tagged:?}");
    assert_eq!(canary.request_count(), ok);
    // Untagged traffic is under the route's own (generous) limit.
    let plain = burst(&gw, 20, || Req::get("/").header("x-user", "u1")).await;
    assert_eq!(count(&plain, StatusCode::OK), 20, "{plain:?}");
    assert_eq!(rate_limited_total(&gw, "all").await, (12 - ok) as u64);
}

#[test]
fn limits_config_errors_are_located() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let cfg = GatewayConfig::new(&routes(
        &stable,
        &canary,
        "    limits: { rate_per_s: 0, burst: 1 }\n  - name: two\n    split: [{ upstream: stable, weight: 1 }]\n    limits: { rate_per_s: 10, key: \"cookie:sid\" }\n  - name: three\n    split: [{ upstream: stable, weight: 1 }]\n    limits: { rate: 10 }\n",
        ", limits: { rate_per_s: 1, key: \"header:bad header\" }",
    ));
    let out = cfg.check();
    assert_eq!(out.code, Some(1), "{out}");
    let f = cfg.routes_file().display().to_string();
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        got,
        [
            format!("{f}:6:68: routes[0].dye.limits.key: found \"header:bad header\", expected `header:NAME` with a valid header name"),
            format!("{f}:8:27: routes[0].limits.rate_per_s: found 0, expected a whole number of requests per second >= 1"),
            format!("{f}:11:36: routes[1].limits.key: found \"cookie:sid\", expected `client_ip`, `header:NAME` or `route`"),
            format!("{f}:14:15: routes[2].limits.rate: found unknown field `rate`, expected one of `rate_per_s`, `burst`, `key`"),
        ],
        "{out}"
    );
}
