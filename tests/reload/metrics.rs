//! Metrics across reloads: a routes.yaml edit moves `dyegate_routing_version` and counts the
//! reload by trigger and result, the new table's series appear at 0 and the old counts go on; a
//! broken edit, SIGHUP and the admin API are counted under their own trigger.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dyegate_suite::metrics::{
    requests_total, DECISIONS, LAST_RELOAD_SUCCESS, METRICS_TIMEOUT, RELOADS, REQUESTS, VERSION,
};
use dyegate_suite::{upstream_groups, Conn, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Sends `n` requests made by `req` on one connection, expecting 200.
async fn send(gw: &Dyegate, n: usize, req: impl Fn() -> Req) {
    let mut conn = Conn::http1(gw.addr()).await;
    for i in 0..n {
        let resp = conn.send(req()).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}: {}", resp.text());
    }
}

/// Replaces routes.yaml in one step (write beside it, rename over it), as deploy tools do.
fn replace_routes(config: &GatewayConfig, text: &str) {
    let tmp = config.write("routes.yaml.next", text);
    std::fs::rename(&tmp, config.routes_file()).expect("renaming the new routes.yaml in place");
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as f64
}

#[tokio::test]
async fn a_routes_file_edit_moves_the_version_and_keeps_the_counts() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let groups = upstream_groups(&[("shop-stable", &stable), ("shop-canary", &canary)]);
    let v1 = format!(
        "{groups}routes:\n  - name: shop\n    split: [{{ upstream: shop-stable, weight: 1 }}]\n"
    );
    let gw = GatewayConfig::new(&v1).start();
    let stable_ok = requests_total("shop", "shop-stable", "none", "2xx");

    send(&gw, 2, || Req::get("/")).await;
    let m = gw
        .wait_for_metrics(METRICS_TIMEOUT, "2 requests counted", |m| {
            m.at(&stable_ok) == Some(2.0)
        })
        .await;
    assert_eq!(m.value(VERSION, &[]), 1.0);
    assert!(
        m.family(REQUESTS)
            .keys()
            .all(|s| s.label("upstream_group") != Some("shop-canary")),
        "shop-canary is in no route yet"
    );

    // v2: a tagged canary lane. Live reload picks the edit up by itself.
    let before_edit = unix_now();
    replace_routes(
        gw.config(),
        &format!(
            "{groups}routes:
  - name: shop
    dye: {{ tags: {{ canary: shop-canary }} }}
    split: [{{ upstream: shop-stable, weight: 1 }}]
"
        ),
    );
    let m = gw
        .wait_for_metrics(Duration::from_secs(10), "routing version 2", |m| {
            // The gauge and the reload counter both move at the swap; wait for both.
            m.get(VERSION, &[]) == Some(2.0)
                && m.get(RELOADS, &[("trigger", "file"), ("result", "applied")]) >= Some(1.0)
        })
        .await;
    assert_eq!(
        m.value(RELOADS, &[("trigger", "file"), ("result", "applied")]),
        1.0
    );
    assert_eq!(
        m.value(RELOADS, &[("trigger", "startup"), ("result", "applied")]),
        1.0
    );
    assert_eq!(m.sum(RELOADS, &[("result", "failed")]), 0.0);
    assert!(m.value(LAST_RELOAD_SUCCESS, &[]) >= before_edit);
    // The new lane's series exist at 0; the old counts are kept.
    for tag in ["none", "other", "canary"] {
        for class in CLASSES {
            let s = requests_total("shop", "shop-canary", tag, class);
            assert_eq!(m.at(&s), Some(0.0), "{s} after the reload");
        }
    }
    assert_eq!(m.at(&stable_ok), Some(2.0));

    // The new table counts: tagged traffic lands in the new lane.
    send(&gw, 3, || Req::get("/").header("x-env-tag", "canary")).await;
    let canary_ok = requests_total("shop", "shop-canary", "canary", "2xx");
    let m = gw
        .wait_for_metrics(METRICS_TIMEOUT, "3 canary requests counted", |m| {
            m.at(&canary_ok) == Some(3.0)
        })
        .await;
    assert_eq!(
        m.value(
            DECISIONS,
            &[
                ("route", "shop"),
                ("upstream_group", "shop-canary"),
                ("reason", "tag")
            ]
        ),
        3.0
    );

    // A broken edit is counted as failed; the version stays.
    let last_success = m.value(LAST_RELOAD_SUCCESS, &[]);
    replace_routes(
        gw.config(),
        &format!(
            "{groups}routes:\n  - name: shop\n    split: [{{ upstream: shop-stable, weight: -5 }}]\n"
        ),
    );
    let m = gw
        .wait_for_metrics(Duration::from_secs(10), "a failed file reload", |m| {
            m.get(RELOADS, &[("trigger", "file"), ("result", "failed")]) == Some(1.0)
        })
        .await;
    assert_eq!(m.value(VERSION, &[]), 2.0);
    assert_eq!(
        m.value(RELOADS, &[("trigger", "file"), ("result", "applied")]),
        1.0
    );
    assert_eq!(m.value(LAST_RELOAD_SUCCESS, &[]), last_success);
    // `no_op` of the file trigger is not pinned: a rename can be reported as more than one
    // file event, and each event after the first finds the content already applied.

    // SIGHUP and the admin API on an unchanged (still broken) file: each counted under its own
    // trigger, the version stays.
    let hup = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .expect("running kill");
    assert!(hup.success());
    let m = gw
        .wait_for_metrics(Duration::from_secs(10), "a SIGHUP reload", |m| {
            m.sum(RELOADS, &[("trigger", "sighup")]) >= 1.0
        })
        .await;
    assert_eq!(
        m.value(RELOADS, &[("trigger", "sighup"), ("result", "failed")]),
        1.0
    );
    let resp = Req::post("/reload").send(gw.admin_addr()).await;
    assert!(
        !resp.status.is_success(),
        "POST /reload of a broken file: {}",
        resp.text()
    );
    let m = gw.metrics().await;
    assert_eq!(
        m.value(RELOADS, &[("trigger", "api"), ("result", "failed")]),
        1.0
    );
    assert_eq!(m.sum(RELOADS, &[("trigger", "api")]), 1.0);
    assert_eq!(m.value(VERSION, &[]), 2.0);
}
