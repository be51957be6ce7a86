//! One write must not empty the fleet, end to end with a real etcd: `current` put (etcdctl) to a
//! generation that does not exist, or to the served one's name plus one byte, and the route keys
//! of the served generation deleted, are revisions rejected at `current` while the last good
//! table serves; a gateway started on such a revision refuses to start. A table with no routes
//! is served only when pushed with `dyegate push --allow-empty`, which marks it in `current`'s
//! value; a fleet rollback to it keeps the mark.

use dyegate_suite::etcd::fleet::{answered_by, Fleet, PREFIX, SETTLE};
use dyegate_suite::{Dyegate, Req};
use http::StatusCode;
use serde_json::Value;

/// How a refused empty table is pushed on purpose, as every refusal says.
const HOW: &str = "a table with no routes is served only when pushed on purpose with `dyegate push --allow-empty`";

/// Waits until `/status` shows the revision etcd is at now as rejected; that status.
async fn rejected_now(fleet: &Fleet, gw: &Dyegate) -> Value {
    let rejected = fleet.etcd.revision();
    gw.wait_for_status(SETTLE, "the rejected revision", |s| {
        s["etcd"]["rejected_revision"] == rejected
    })
    .await
}

/// The last error in `status`, as its lines.
fn last_errors(status: &Value) -> Vec<String> {
    let errors = status["last_error"]["errors"].as_array().cloned();
    let errors = errors.unwrap_or_default().into_iter();
    errors
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_naming_a_missing_generation_is_rejected_and_the_last_good_table_serves() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let good = fleet.push(&config, "blue");
    let gw = config.start();
    assert_eq!(answered_by(&gw).await, "blue");
    let generation = fleet.generation();
    let current = format!("{PREFIX}current");

    for missing in ["no-such-generation".to_string(), format!("{generation}x")] {
        fleet.etcd.ctl_ok(&["put", "--", &current, &missing]);
        let status = rejected_now(&fleet, &gw).await;
        assert_eq!(
            last_errors(&status),
            [format!(
                "etcd:{current}:1:1: found generation \"{missing}\", which has no keys under {PREFIX}tables/{missing}/, expected a generation holding a table ({HOW})"
            )],
            "{status:#}"
        );
        assert_eq!(status["version"], good, "{status:#}");
        assert_eq!(status["routes"], 1, "{status:#}");
        assert_eq!(answered_by(&gw).await, "blue");
    }

    // A gateway that starts now, with nothing cached, refuses the table instead of serving it.
    let fresh = fleet.config("blue").run_to_exit();
    assert_eq!(fresh.code, Some(1), "{fresh}");
    assert!(
        fresh.stderr.contains(&format!(
            "etcd:{current}:1:1: found generation \"{generation}x\", which has no keys"
        )),
        "{fresh}"
    );
    assert!(
        fresh.stderr.contains("has no cached table to start from"),
        "{fresh}"
    );

    // Naming the served generation again is the same table, applied.
    fleet.etcd.ctl_ok(&["put", "--", &current, &generation]);
    let back = fleet.etcd.revision();
    let status = gw
        .wait_for_status(SETTLE, "the good generation again, nothing rejected", |s| {
            // The source clears its rejected revision just after the table is committed.
            s["version"] == back && s["etcd"]["rejected_revision"] == Value::Null
        })
        .await;
    assert_eq!(status["version"], back, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_routes_is_served_only_when_pushed_with_allow_empty() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    fleet.push(&config, "blue");
    let gw = config.start();
    let generation = fleet.generation();
    let current = format!("{PREFIX}current");

    // The route keys deleted behind dyegate's back: upstreams left, no routes.
    fleet.etcd.ctl_ok(&[
        "del",
        "--prefix",
        &format!("{PREFIX}tables/{generation}/routes/"),
    ]);
    let status = rejected_now(&fleet, &gw).await;
    assert_eq!(
        last_errors(&status),
        [format!(
            "etcd:{current}:1:1: found generation \"{generation}\" with upstreams and no routes, expected at least one route while the running table has 1 ({HOW})"
        )],
        "{status:#}"
    );
    assert_eq!(answered_by(&gw).await, "blue");

    // A push of a table with no routes is refused unless asked for, and writes nothing.
    let empty = fleet.routes_to("blue");
    let empty = format!(
        "{}routes: []\n",
        &empty[..empty.find("routes:").expect("routes")]
    );
    let before = fleet.etcd.revision();
    let out = fleet.push_text(gw.config(), &empty).expect_err("refused");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains(
            "push.yaml: found a table with no routes, expected at least one route: every gateway of the fleet would answer 404 to every request"
        ),
        "{out}"
    );
    assert!(out.stderr.contains("nothing was written"), "{out}");
    assert_eq!(fleet.etcd.revision(), before, "nothing written");

    // With --allow-empty: marked in `current`, applied, every request 404.
    let file = gw.config().write("empty.yaml", &empty);
    let out = gw
        .config()
        .cli(&["push", "--allow-empty", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(0), "{out}");
    let emptied = dyegate_suite::etcd::fleet::revision_printed(&out).expect("a revision");
    let marked = fleet.etcd.get(&current).expect("current");
    assert_eq!(marked, format!("{} keys=2 allow-empty", fleet.generation()));
    let status = gw
        .wait_for_status(SETTLE, "the empty table, nothing rejected", |s| {
            // The source clears its rejected revision just after the table is committed.
            s["version"] == emptied && s["etcd"]["rejected_revision"] == Value::Null
        })
        .await;
    assert_eq!(status["routes"], 0, "{status:#}");
    assert_eq!(status["upstreams"], 2, "the upstreams are kept: {status:#}");
    assert_eq!(
        Req::get("/").send(gw.addr()).await.status,
        StatusCode::NOT_FOUND
    );

    // Routes again, then the whole fleet rolled back to the empty table: the mark goes with it.
    let full = fleet.push(gw.config(), "green");
    gw.wait_for_status(SETTLE, "routes again", |s| s["version"] == full)
        .await;
    assert_eq!(answered_by(&gw).await, "green");
    let out = gw
        .config()
        .cli(&["rollback", "--fleet", "--to", &emptied.to_string()]);
    assert_eq!(out.code, Some(0), "{out}");
    let rolled = dyegate_suite::etcd::fleet::revision_printed(&out).expect("a revision");
    assert!(
        (fleet.etcd.get(&current).expect("current")).ends_with(" allow-empty"),
        "the mark is kept"
    );
    gw.wait_for_status(SETTLE, "the rolled-back empty table", |s| {
        s["version"] == rolled && s["routes"] == 0
    })
    .await;
    assert_eq!(
        Req::get("/").send(gw.addr()).await.status,
        StatusCode::NOT_FOUND
    );
}
