//! Active health checks and lane fallback end to end, with upstreams that break for real: a
//! tagged lane whose group goes down is answered by the base lane within interval_ms x
//! unhealthy_after (+ slack) and returns within interval_ms x healthy_after (+ slack);
//! `on_unhealthy_tag: reject` answers 503; an untagged split never moves to another group;
//! health state survives a reload that keeps the target; removed targets' checks stop; never
//! more than one check in flight per target; `GET /upstreams` and `dyegate upstreams` show it.
//! Outlier ejection counts what checks miss: 5xx answers, and answers that break after their head.

use std::time::{Duration, Instant};

use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{poll_until, wait_until_async, Conn, Dyegate, Req, Resp};
use http::StatusCode;

/// Room for a loaded two-core machine on top of a configured time.
const SLACK: Duration = Duration::from_millis(1500);
const INTERVAL_MS: u64 = 200;

fn lanes(stable: &FaultyUpstream, canary: &FaultyUpstream, on_unhealthy: &str) -> String {
    format!(
        "upstreams:
  stable: {{ targets: [\"{}\"] }}
  canary:
    targets: [\"{}\"]
    health: {{ http: {{ path: /healthz }}, interval_ms: {INTERVAL_MS}, timeout_ms: 150, unhealthy_after: 2, healthy_after: 2 }}
routes:
  - name: shop
    dye: {{ tags: {{ canary: canary }}, on_unhealthy_tag: {on_unhealthy} }}
    split: [{{ upstream: stable, weight: 1 }}]
",
        stable.target(),
        canary.target()
    )
}

async fn tagged(gw: &Dyegate) -> Resp {
    Req::get("/")
        .header("x-env-tag", "canary")
        .header("x-dyegate-debug", "1")
        .send(gw.addr())
        .await
}

/// Polls tagged requests until one is answered by `upstream`; returns how long that took.
async fn time_until_answered_by(gw: &Dyegate, upstream: &str, within: Duration) -> Duration {
    let started = Instant::now();
    if let Err(resp) = poll_until(within, || tagged(gw), |r| r.upstream() == Some(upstream)).await {
        panic!(
            "tagged requests not answered by {upstream} within {within:?}; last: {} {:?}\n{}",
            resp.status,
            resp.header("x-dyegate-decision"),
            gw.logs()
        );
    }
    started.elapsed()
}

#[tokio::test]
async fn a_tagged_lane_that_goes_down_falls_back_to_base_and_comes_back() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::None);
    let gw = Dyegate::start(&lanes(&stable, &canary, "base"));
    let resp = tagged(&gw).await;
    assert_eq!(resp.upstream(), Some("canary"));

    canary.set_fault(Fault::Status500);
    let limit = Duration::from_millis(INTERVAL_MS * 2) + SLACK;
    let took = time_until_answered_by(&gw, "stable", limit).await;
    eprintln!("fallback after {took:?}");
    let resp = tagged(&gw).await;
    assert_eq!(resp.status, StatusCode::OK);
    let decision = resp
        .header("x-dyegate-decision")
        .unwrap_or_default()
        .to_string();
    assert!(
        decision.starts_with(&format!(
            "route=shop; group=stable; reason=fallback_unhealthy; tag=canary; target={}; version=1; tries=1; match=any; miss=none",
            stable.target()
        )),
        "{decision}"
    );
    // The tag still travels upstream: the services behind keep their own lanes.
    canary.set_fault(Fault::None);
    let took = time_until_answered_by(&gw, "canary", limit).await;
    eprintln!("back after {took:?}");

    let scrape = gw.metrics().await;
    assert!(
        scrape
            .get(
                "dyegate_decisions_total",
                &[
                    ("reason", "fallback_unhealthy"),
                    ("route", "shop"),
                    ("upstream_group", "stable")
                ]
            )
            .unwrap_or(0.0)
            >= 1.0,
        "{}",
        scrape.dump("dyegate_decisions_total")
    );
    let checks = |result: &str| {
        scrape
            .get(
                "dyegate_health_checks_total",
                &[
                    ("result", result),
                    ("target", &canary.target()),
                    ("upstream_group", "canary"),
                ],
            )
            .unwrap_or(0.0)
    };
    assert!(
        checks("failure") >= 2.0 && checks("success") >= 2.0,
        "{}",
        scrape.dump("dyegate_health_checks_total")
    );
    let healthy = dyegate_suite::metrics::Series::new(
        "dyegate_target_healthy",
        &[("target", &canary.target()), ("upstream_group", "canary")],
    );
    gw.wait_for_metrics(SLACK, "the canary shown healthy", |s| {
        s.at(&healthy) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn reject_answers_503_naming_the_group() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::UnhealthyButServing);
    let gw = Dyegate::start(&lanes(&stable, &canary, "reject"));
    let within = Duration::from_millis(INTERVAL_MS * 2) + SLACK;
    let refused = wait_until_async(within, || async {
        tagged(&gw).await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(refused, "{}", gw.logs());
    let resp = tagged(&gw).await;
    assert_eq!(
        resp.text().lines().next(),
        Some("503 Service Unavailable: no healthy target in upstream group canary")
    );
    assert_eq!(
        resp.header("x-dyegate-decision"),
        Some("route=shop; group=canary; reason=no_healthy_target; tag=canary; target=none; version=1; tries=0; match=any; miss=none")
    );
    // Untagged requests are unaffected.
    assert_eq!(
        Req::get("/").send(gw.addr()).await.upstream(),
        Some("stable")
    );
    let scrape = gw.metrics().await;
    assert!(
        scrape
            .get(
                "dyegate_decisions_total",
                &[
                    ("reason", "no_healthy_target"),
                    ("route", "shop"),
                    ("upstream_group", "canary")
                ]
            )
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[tokio::test]
async fn an_untagged_split_whose_group_is_down_answers_503_and_never_uses_another_group() {
    let a = FaultyUpstream::start("a", Fault::None);
    let b = FaultyUpstream::start("b", Fault::None);
    let check = "health: { tcp: true, interval_ms: 200, timeout_ms: 150 }";
    let gw = Dyegate::start(&format!(
        "upstreams:\n  a: {{ targets: [\"{}\"], {check} }}\n  b: {{ targets: [\"{}\"] }}\nroutes:\n  - name: shop\n    split: [{{ upstream: a, weight: 1 }}, {{ upstream: b, weight: 1 }}]\n",
        a.target(),
        b.target()
    ));
    let addr = a.addr();
    drop(a); // killed: connections refused, TCP checks fail
    let down = wait_until_async(Duration::from_millis(400) + SLACK, || async {
        Req::get("/").send(gw.addr()).await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(down, "{}", gw.logs());
    let before = b.request_count();
    let mut refused = 0;
    for _ in 0..20 {
        let resp = Req::get("/").send(gw.addr()).await;
        match resp.status {
            StatusCode::OK => assert_eq!(resp.upstream(), Some("b")),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(
                    resp.text().lines().next(),
                    Some("503 Service Unavailable: no healthy target in upstream group a")
                );
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        refused, 10,
        "a's half of the split is refused, not moved to b"
    );
    assert_eq!(b.request_count() - before, 10);
    // Restarted: healthy again after healthy_after (2) checks.
    let a = FaultyUpstream::start_on(addr, "a", Fault::None).expect("rebinding");
    let back = wait_until_async(Duration::from_millis(400) + SLACK, || async {
        Req::get("/").send(gw.addr()).await.upstream() == Some("a")
    })
    .await;
    assert!(back, "{}", gw.logs());
    drop(a);
}

#[tokio::test]
async fn health_state_is_kept_across_a_reload_that_keeps_the_target() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::UnhealthyButServing);
    let routes = lanes(&stable, &canary, "base");
    let gw = Dyegate::start(&routes);
    time_until_answered_by(
        &gw,
        "stable",
        Duration::from_millis(INTERVAL_MS * 2) + SLACK,
    )
    .await;
    // Checks stop failing only after the reload: a target whose state was reset would serve
    // tagged requests at once (a new target counts as healthy).
    let edited = format!("{routes}  - name: other\n    match: {{ path_prefix: /other }}\n    split: [{{ upstream: stable, weight: 1 }}]\n");
    gw.config().write("routes.yaml", &edited);
    let (code, report) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{report}");
    let resp = tagged(&gw).await;
    assert_eq!(
        resp.upstream(),
        Some("stable"),
        "state lost across the reload"
    );
    assert!(
        resp.header("x-dyegate-decision")
            .is_some_and(|d| d.contains("version=2")),
        "{:?}",
        resp.header("x-dyegate-decision")
    );
    let upstreams = gw.admin_get("/upstreams").await;
    let canary_state = &upstreams["groups"][1]["targets"][0];
    assert_eq!(canary_state["state"], "unhealthy", "{upstreams:#}");
    assert_eq!(
        canary_state["last_check"]["result"], "failure",
        "{upstreams:#}"
    );
}

#[tokio::test]
async fn checks_of_removed_targets_stop_and_new_targets_start_healthy() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let old = FaultyUpstream::start("old", Fault::None);
    let new = FaultyUpstream::start("new", Fault::UnhealthyButServing);
    let with = |t: &FaultyUpstream| {
        format!(
            "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"], health: {{ http: {{}}, interval_ms: 100, unhealthy_after: 3 }} }}\nroutes:\n  - name: shop\n    dye: {{ tags: {{ canary: canary }} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
            stable.target(),
            t.target()
        )
    };
    let gw = Dyegate::start(&with(&old));
    assert!(wait_until_async(SLACK, || async { old.health_checks() >= 2 }).await);
    gw.config().write("routes.yaml", &with(&new));
    let (code, report) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{report}");
    // A new target counts as healthy until its checks say otherwise (3 failures here).
    assert_eq!(tagged(&gw).await.upstream(), Some("new"));
    // time is tested: a check of the old target already in flight at the reload may still land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = old.health_checks();
    // time is tested: no more checks of the removed target over six of its intervals.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        old.health_checks() <= seen + 1,
        "checks of a removed target went on"
    );
    assert!(new.health_checks() >= 3);
    time_until_answered_by(&gw, "stable", SLACK).await;
}

#[tokio::test]
async fn never_more_than_one_check_in_flight_per_target() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let slow = FaultyUpstream::start("slow", Fault::SlowHealthz); // 300 ms per check
    let gw = Dyegate::start(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  slow: {{ targets: [\"{}\"], health: {{ http: {{}}, interval_ms: 50, timeout_ms: 1000 }} }}\nroutes:\n  - name: shop\n    dye: {{ tags: {{ canary: slow }} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        stable.target(),
        slow.target()
    ));
    // Three 300 ms checks, one after the other, while the 50 ms interval kept asking for more.
    assert!(
        wait_until_async(Duration::from_secs(10), || async {
            slow.health_checks() >= 3
        })
        .await,
        "{}",
        slow.health_checks()
    );
    assert_eq!(slow.max_checks_in_flight(), 1);
    assert_eq!(
        tagged(&gw).await.upstream(),
        Some("slow"),
        "slow checks are good checks"
    );
}

#[tokio::test]
async fn a_target_that_passes_checks_but_fails_requests_is_ejected() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::HealthyButFailing);
    let gw = Dyegate::start(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary:\n    targets: [\"{}\"]\n    health: {{ http: {{}}, interval_ms: 100 }}\n    outlier: {{ consecutive_failures: 3, eject_ms: 60000 }}\nroutes:\n  - name: shop\n    dye: {{ tags: {{ canary: canary }} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        stable.target(),
        canary.target()
    ));
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(tagged(&gw).await.status.as_u16());
        }
        v
    };
    assert_eq!(statuses, vec![500, 500, 500]);
    // Ejected (one target of one may be ejected): the lane falls back though checks pass.
    for _ in 0..5 {
        assert_eq!(tagged(&gw).await.upstream(), Some("stable"));
    }
    assert_eq!(canary.request_count(), 3);
    let checked = wait_until_async(SLACK, || async {
        gw.admin_get("/upstreams").await["groups"][1]["targets"][0]["last_check"]["result"]
            == "success"
    })
    .await;
    assert!(checked, "{:#}", gw.admin_get("/upstreams").await);
    let upstreams = gw.admin_get("/upstreams").await;
    let t = &upstreams["groups"][1]["targets"][0];
    assert_eq!(t["state"], "ejected", "{upstreams:#}");
    assert!(t["ejected_until"].as_str().is_some(), "{upstreams:#}");
    let cli = gw.config().cli(&["upstreams"]);
    assert_eq!(cli.code, Some(0), "{cli}");
    assert!(cli.stdout.contains("\"ejected\""), "{cli}");
}

/// A target that answers 200 and resets the connection mid-body fails each attempt although its
/// head was good: `consecutive_failures` of those eject it (the head no longer counts as a
/// success that resets the count before the body breaks).
#[tokio::test]
async fn a_target_whose_answers_break_after_the_head_is_ejected() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::ResetMidResponse);
    let gw = Dyegate::start(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary:\n    targets: [\"{}\"]\n    outlier: {{ consecutive_failures: 3, eject_ms: 60000 }}\nroutes:\n  - name: shop\n    dye: {{ tags: {{ canary: canary }} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        stable.target(),
        canary.target()
    ));
    let try_tagged = || async {
        let mut conn = Conn::http1(gw.addr()).await;
        conn.try_send(Req::get("/").header("x-env-tag", "canary"))
            .await
    };
    for i in 0..3 {
        let result = try_tagged().await;
        assert!(
            result.is_err(),
            "answer {i}: a body broken off must not end cleanly: {result:?}"
        );
    }
    assert_eq!(canary.request_count(), 3);
    // Ejected (one target of one may be ejected): the lane falls back.
    for i in 0..5 {
        let resp = try_tagged().await.unwrap_or_else(|e| {
            panic!("tagged request {i} after 3 broken answers still reached the canary: {e}")
        });
        assert_eq!(resp.upstream(), Some("stable"), "{}", resp.text());
    }
    assert_eq!(canary.request_count(), 3);
    let upstreams = gw.admin_get("/upstreams").await;
    let t = &upstreams["groups"][1]["targets"][0];
    assert_eq!(t["state"], "ejected", "{upstreams:#}");
}
