//! etcd away, end to end with a real etcd: traffic is unaffected while it is stopped, `/status`
//! and `dyegate_source_connected` say disconnected, and on its return the newest table written
//! while the gateway was cut off is applied; a gateway restarted while etcd is down serves its
//! cached table, stale until etcd answers; fleet rollback writes an old revision's table back
//! for every gateway, while a local rollback marks the gateway divergent.

use std::time::Duration;

use dyegate_suite::etcd::fleet::{
    answered_by, two_gateways_blue_then_green, wait_for_upstream, Fleet, SETTLE,
};

async fn connected_metric(gw: &dyegate_suite::Dyegate) -> f64 {
    gw.metrics().await.value("dyegate_source_connected", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_stopped_traffic_unaffected_then_the_newest_table_written_meanwhile_is_applied() {
    let mut fleet = Fleet::new();
    let config = fleet.config("blue");
    fleet.push(&config, "blue");
    let gw = config.start();
    assert_eq!(connected_metric(&gw).await, 1.0);

    fleet.etcd.stop();
    gw.wait_for_status(SETTLE, "connected: false", |s| s["connected"] == false)
        .await;
    assert_eq!(connected_metric(&gw).await, 0.0);
    for _ in 0..20 {
        assert_eq!(answered_by(&gw).await, "blue");
    }

    // The gateway is kept from reconnecting (stopped) while two revisions are written.
    gw.signal(libc::SIGSTOP);
    fleet.etcd.start_again();
    let r1 = fleet.push(gw.config(), "green");
    let r2 = fleet
        .push_text(
            gw.config(),
            &fleet.routes_to("blue").replace("name: all", "name: every"),
        )
        .unwrap_or_else(|o| panic!("{o}"));
    gw.signal(libc::SIGCONT);
    gw.wait_for_status(SETTLE, "the last revision", |s| {
        s["version"] == r2 && s["connected"] == true
    })
    .await;
    // The newest table written meanwhile is what is applied (r1's may be skipped: pending
    // revisions are coalesced).
    assert!(r2 > r1);
    assert_eq!(connected_metric(&gw).await, 1.0);
    assert_eq!(answered_by(&gw).await, "blue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_etcd_is_down_serves_the_cached_table_stale_until_etcd_answers() {
    let mut fleet = Fleet::new();
    let config = fleet.config("blue");
    let pushed = fleet.push(&config, "green");
    let gw = config.start();
    assert_eq!(answered_by(&gw).await, "green");
    let config = gw.stop();
    fleet.etcd.stop();

    let gw = config.start();
    assert_eq!(answered_by(&gw).await, "green");
    let status = gw.status().await;
    assert_eq!(status["stale"], true, "{status:#}");
    assert_eq!(status["connected"], false, "{status:#}");
    assert_eq!(status["version"], pushed, "{status:#}");
    assert!(
        gw.logs().contains("serving the cached table"),
        "{}",
        gw.logs()
    );

    fleet.etcd.start_again();
    gw.wait_for_status(Duration::from_secs(20), "reconnected", |s| {
        s["connected"] == true && s["stale"] == false
    })
    .await;
    assert_eq!(gw.version().await, pushed);
    assert_eq!(answered_by(&gw).await, "green");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_rollback_is_a_new_revision_and_a_local_rollback_diverges() {
    let (_fleet, a, b, r1, r2) = two_gateways_blue_then_green().await;

    // Local: this gateway alone, marked divergent; the fleet is unchanged.
    let out = a.config().cli(&["rollback", "--to", &r1.to_string()]);
    assert_eq!(out.code, Some(0), "{out}");
    wait_for_upstream(&a, "blue", SETTLE).await;
    assert_eq!(a.status().await["divergent"], true);
    assert_eq!(answered_by(&b).await, "green");
    assert_eq!(b.status().await["divergent"], false);

    // Fleet: r1's table written back as a new revision; every gateway follows it.
    let out = a
        .config()
        .cli(&["rollback", "--fleet", "--to", &r1.to_string()]);
    assert_eq!(out.code, Some(0), "{out}");
    let r3 = dyegate_suite::etcd::fleet::revision_printed(&out).expect("a revision");
    assert!(r3 > r2);
    // The local rollback was r2.1: it took no fleet number, so every gateway reports r3.
    for gw in [&a, &b] {
        gw.wait_for_status(SETTLE, "the fleet rollback", |s| {
            s["etcd"]["revision"] == r3 && s["divergent"] == false
        })
        .await;
        assert_eq!(answered_by(gw).await, "blue");
    }
    assert_eq!(a.version().await, r3);
    assert_eq!(b.version().await, r3);
    let versions = a.admin_get("/versions").await.to_string();
    assert!(versions.contains("\"trigger\":\"rollback\""), "{versions}");
    // --fleet without --to: a usage error.
    let compacted = a.config().cli(&["rollback", "--fleet"]);
    assert_eq!(compacted.code, Some(2), "{compacted}");
}
