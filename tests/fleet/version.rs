//! One version for one table across the fleet, end to end with a real etcd: the version of a
//! table is the highest mod revision among `current` and its generation's keys, which a gateway
//! that watched the change, one started afterwards, one restarted and one that re-listed after a
//! compaction all compute the same. A key deleted behind dyegate's back leaves no revision
//! behind, so the table it leaves is refused by all of them alike (`current` counts the keys).
//! A local rollback takes no fleet number: it is the fleet version plus a local sequence.

use dyegate_suite::etcd::fleet::{
    answered_by, two_gateways_blue_then_green, wait_for_upstream, Fleet, PREFIX, SETTLE,
};
use dyegate_suite::Dyegate;

/// Waits until every gateway reports `version` and nothing rejected.
async fn all_at(gws: &[&Dyegate], version: u64) {
    for gw in gws {
        gw.wait_for_status(SETTLE, "the fleet's version", |s| {
            s["version"] == version && s["etcd"]["rejected_revision"].is_null()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_reports_one_version_for_one_table_whatever_it_saw() {
    let mut fleet = Fleet::new();
    let config = fleet.config("blue");
    let two = format!(
        "{}  - name: api\n    match: {{ path_prefix: /api }}\n    split: [{{ upstream: green, weight: 1 }}]\n",
        fleet.routes_to("blue")
    );
    let pushed = fleet
        .push_text(&config, &two)
        .unwrap_or_else(|o| panic!("{o}"));
    let a = config.start();
    let b = fleet.config("blue").start();
    all_at(&[&a, &b], pushed).await;

    // A route key deleted behind dyegate's back: refused by every gateway, located at `current`.
    let generation = fleet.generation();
    let key = format!("{PREFIX}tables/{generation}/routes/000002-api");
    let api = fleet.etcd.get(&key).expect("the api route");
    fleet.etcd.ctl_ok(&["del", &key]);
    let deleted = fleet.etcd.revision();
    let refused = format!(
        "etcd:{PREFIX}current:1:1: found 3 keys under {PREFIX}tables/{generation}/, expected 4 (`keys=4` in `current`, as written by `dyegate push`): a key was deleted or added behind dyegate's back; edit a key's value, or push the table again"
    );
    for gw in [&a, &b] {
        let status = gw
            .wait_for_status(SETTLE, "the deletion rejected", |s| {
                s["etcd"]["rejected_revision"] == deleted
            })
            .await;
        assert_eq!(status["version"], pushed, "{status:#}");
        assert_eq!(
            status["last_error"]["errors"][0],
            refused.as_str(),
            "{status:#}"
        );
    }
    // Restarted: its cached table, the same version. Started now, with nothing cached: refused.
    let a = a.stop().start();
    assert_eq!(a.version().await, pushed);
    let fresh = fleet.config("blue").run_to_exit();
    assert_eq!(fresh.code, Some(1), "{fresh}");
    assert!(fresh.stderr.contains(&refused), "{fresh}");

    // The key put back: a table again, numbered with that put's revision everywhere.
    fleet.etcd.ctl_ok(&["put", "--", &key, &format!("{api}\n")]);
    let back = fleet.etcd.revision();
    let c = fleet.config("blue").start();
    all_at(&[&a, &b, &c], back).await;

    // Edits while one gateway is cut off and etcd compacts: it re-lists, and agrees with the
    // ones that watched, one started afterwards and one restarted.
    // (etcd restarted while it is stopped: its watch is gone, and resumes behind the compaction)
    b.signal(libc::SIGSTOP);
    fleet.etcd.stop();
    fleet.etcd.start_again();
    for prefix in ["/api2", "/api3"] {
        let edited = api.replace("/api", prefix);
        fleet
            .etcd
            .ctl_ok(&["put", "--", &key, &format!("{edited}\n")]);
    }
    let edited = fleet.etcd.revision();
    fleet.etcd.ctl_ok(&["compact", &edited.to_string()]);
    b.signal(libc::SIGCONT);
    let d = fleet.config("blue").start();
    let a = a.stop().start();
    all_at(&[&a, &b, &c, &d], edited).await;
    assert!(b.status().await["etcd"]["relists"].as_u64() >= Some(1));

    // A push: one version, the revision it printed.
    let last = fleet.push(a.config(), "green");
    all_at(&[&a, &b, &c, &d], last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_rollback_is_the_fleet_version_plus_a_local_sequence_and_moves_no_number() {
    let (fleet, a, b, r1, r2) = two_gateways_blue_then_green().await;
    all_at(&[&a, &b], r2).await;

    // Local rollbacks on a: r2.1 (back to r1's table), then r2.2 (back to r2's); b is untouched.
    let out = a.config().cli(&["rollback", "--to", &r1.to_string()]);
    assert_eq!(out.code, Some(0), "{out}");
    wait_for_upstream(&a, "blue", SETTLE).await;
    let status = a.status().await;
    assert_eq!(
        (&status["version"], &status["local"], &status["divergent"]),
        (&r2.into(), &1.into(), &true.into()),
        "{status:#}"
    );
    assert!(b.status().await.get("local").is_none());
    let kept = a.admin_get(&format!("/versions/{r2}.1")).await;
    assert_eq!(
        (&kept["version"], &kept["local"]),
        (&r2.into(), &1.into()),
        "{kept:#}"
    );
    assert!(
        kept["source"].as_str().is_some_and(|s| s.contains("blue")),
        "{kept:#}"
    );
    let out = a
        .config()
        .cli(&["versions", &format!("{r2}.1"), "-o", "table"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .starts_with(&format!("# version {r2}.1, applied ")),
        "{out}"
    );
    let versions = a.admin_get("/versions").await;
    assert_eq!(versions["active"], format!("{r2}.1"), "{versions:#}");
    let out = a.config().cli(&["rollback"]);
    assert_eq!(out.code, Some(0), "{out}");
    wait_for_upstream(&a, "green", SETTLE).await;
    assert_eq!(a.status().await["local"], 2);

    // Restarted while the fleet is still at r2: the fleet's table, numbered r2 (not r2 + 1).
    let out = a.config().cli(&["rollback", "--to", &format!("{r2}.1")]);
    assert_eq!(out.code, Some(0), "{out}");
    wait_for_upstream(&a, "blue", SETTLE).await;
    let a = a.stop().start();
    let status = a.status().await;
    assert_eq!(status["version"], r2, "{status:#}");
    assert!(status.get("local").is_none(), "{status:#}");
    assert_eq!(answered_by(&a).await, "green");

    // The next push: one version everywhere, the revision it printed; no local part left.
    let out = a.config().cli(&["rollback", "--to", &r1.to_string()]);
    assert_eq!(out.code, Some(0), "{out}");
    let r3 = fleet.push(a.config(), "blue");
    all_at(&[&a, &b], r3).await;
    let status = a.status().await;
    assert!(status.get("local").is_none(), "{status:#}");
    assert_eq!(status["divergent"], false, "{status:#}");
}
