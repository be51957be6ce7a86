//! A `rollout:` block in a table for etcd, until fleet rollouts land: `dyegate push` refuses it
//! with an error located at the block, and a table that has one anyway (written behind
//! dyegate's back with etcdctl, or by an older dyegate) is served as written with a warning
//! in the log and in `/status` naming the route — never silently ignored.

use dyegate_suite::etcd::fleet::{answered_by, wait_for_upstream, Fleet, PREFIX, SETTLE};

/// `fleet.routes_to(group)` with a rollout of `green` on route `all`.
fn with_rollout(fleet: &Fleet) -> String {
    fleet.routes_to("blue").replace(
        "    split: [{ upstream: blue, weight: 1 }]\n",
        "    split: [{ upstream: blue, weight: 1 }, { upstream: green, weight: 0 }]\n    rollout: { canary: green, steps: [50, 100], step_ms: 60000, gates: { max_error_rate: 0.05 } }\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_in_an_etcd_table_is_refused_by_push_and_named_when_written_behind_its_back() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    fleet.push(&config, "blue");
    let gw = config.start();
    assert_eq!(answered_by(&gw).await, "blue");
    let before = fleet.etcd.revision();

    let text = with_rollout(&fleet);
    let out = fleet.push_text(gw.config(), &text).expect_err("refused");
    assert_eq!(out.code, Some(1), "{out}");
    // Located at the block's value: its line, and the column of its `{`.
    let (line, col) = (text.lines().enumerate())
        .find_map(|(i, l)| {
            l.trim_start()
                .starts_with("rollout:")
                .then(|| (i + 1, l.find('{')))
        })
        .map_or((0, 0), |(line, col)| (line, col.map_or(0, |c| c + 1)));
    assert!(
        out.stderr.contains(&format!(
            "push.yaml:{line}:{col}: routes[0].rollout: found a rollout on route \"all\", expected none in a table for etcd: fleet rollouts are not supported yet"
        )),
        "{out}"
    );
    assert!(out.stderr.contains("nothing was written"), "{out}");
    assert_eq!(fleet.etcd.revision(), before, "nothing written");

    // The same route written behind dyegate's back: served as written, named as not run.
    let key = format!("{PREFIX}tables/{}/routes/000001-all", fleet.generation());
    fleet.etcd.ctl_ok(&[
        "put",
        "--",
        &key,
        "- name: all\n  split: [{ upstream: green, weight: 1 }, { upstream: blue, weight: 0 }]\n  rollout: { canary: blue, steps: [50, 100], step_ms: 60000, gates: { max_error_rate: 0.05 } }\n",
    ]);
    wait_for_upstream(&gw, "green", SETTLE).await;
    let status = gw
        .wait_for_status(SETTLE, "the warning about the rollout", |s| {
            s["etcd"]["unsupported_rollouts"] == serde_json::json!(["all"])
        })
        .await;
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains("route all has a `rollout:` block: a gateway that follows etcd does not run rollouts yet"),
        "{status:#}"
    );
    assert!(
        gw.stderr()
            .contains("etcd table: route(s) all have a `rollout:` block"),
        "{}",
        gw.logs()
    );
    // Nothing judges it: no rollout runs.
    let rollouts = gw.admin_get("/rollouts").await;
    assert_eq!(rollouts["rollouts"], serde_json::json!([]), "{rollouts:#}");

    // A table without it clears the warning.
    fleet.push(gw.config(), "blue");
    wait_for_upstream(&gw, "blue", SETTLE).await;
    let status = gw
        .wait_for_status(SETTLE, "the warning cleared", |s| {
            s["warnings"] == serde_json::json!([])
        })
        .await;
    assert_eq!(
        status["etcd"]["unsupported_rollouts"],
        serde_json::json!([])
    );
}
