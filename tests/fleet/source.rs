//! etcd as the routing source, end to end with a real etcd: a push is served within a second
//! at version = revision; an invalid push is refused before anything is written; an invalid
//! table written behind dyegate's back (etcdctl) is rejected with an error located at its key
//! while the last good table serves; of two pushes from the same revision exactly one wins; a
//! watch that falls behind a compaction re-lists and misses nothing; 10,000 routes fit.

use std::time::Duration;

use dyegate::source::{layout, store};
use dyegate_suite::etcd::fleet::{answered_by, wait_for_upstream, Fleet, PREFIX, SETTLE};
use dyegate_suite::{GatewayConfig, Req};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_served_within_a_second_at_version_equal_to_its_revision() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let first = fleet.push(&config, "blue");
    let gw = config.start();
    assert_eq!(answered_by(&gw).await, "blue");
    let status = gw.status().await;
    assert_eq!(status["source"], "etcd", "{status:#}");
    assert_eq!(status["connected"], true, "{status:#}");
    assert_eq!(status["stale"], false, "{status:#}");
    assert_eq!(status["version"], first, "{status:#}");

    let out = gw.config().cli(&[
        "push",
        gw.config()
            .write("p.yaml", &fleet.routes_to("green"))
            .to_str()
            .unwrap_or(""),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("diff against the fleet's revision"),
        "{out}"
    );
    assert!(
        out.stdout.contains("all:"),
        "the diff names the route: {out}"
    );
    let second = dyegate_suite::etcd::fleet::revision_printed(&out).expect("a revision");
    let took = wait_for_upstream(&gw, "green", Duration::from_secs(1)).await;
    assert!(took < Duration::from_secs(1), "served after {took:?}");
    assert_eq!(gw.version().await, second);
    let versions = gw.admin_get("/versions").await;
    let last = versions["versions"]
        .as_array()
        .and_then(|v| v.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["trigger"], "etcd", "{versions:#}");
    assert_eq!(last["revision"], second, "{versions:#}");

    // The same table again writes nothing.
    let same = gw.config().write("same.yaml", &fleet.routes_to("green"));
    let out = gw.config().cli(&["push", same.to_str().unwrap_or("")]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("no changes: the fleet is at revision"),
        "{out}"
    );
    // pull gives the table back as one routes.yaml.
    let pulled = gw.config().cli(&["pull"]);
    assert_eq!(pulled.code, Some(0), "{pulled}");
    assert_eq!(pulled.stdout, fleet.routes_to("green"));
    // diff with an etcd: side.
    let d = gw
        .config()
        .cli(&["diff", &format!("etcd:{first}"), "etcd:"]);
    assert_eq!(d.code, Some(0), "{d}");
    assert!(
        d.stdout.contains("blue") && d.stdout.contains("green"),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tables_are_refused_and_the_last_good_one_serves() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let good = fleet.push(&config, "blue");
    let gw = config.start();
    let before = fleet.etcd.revision();

    // Refused locally, nothing written.
    let bad = fleet.routes_to("blue").replace("weight: 1", "weight: -5");
    let out = fleet.push_text(gw.config(), &bad).expect_err("refused");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains(
            "push.yaml:6:39: routes[0].split[0].weight: found -5, expected a whole number >= 0"
        ),
        "{out}"
    );
    assert!(out.stderr.contains("nothing was written"), "{out}");
    assert_eq!(fleet.etcd.revision(), before, "nothing written");

    // Written behind dyegate's back: rejected, located at the key, last good serves.
    let key = format!("{PREFIX}tables/{}/routes/000001-all", fleet.generation());
    fleet.etcd.ctl_ok(&[
        "put",
        "--",
        &key,
        "- name: all\n  split: [{ upstream: nowhere, weight: 1 }]\n",
    ]);
    let rejected = fleet.etcd.revision();
    let status = gw
        .wait_for_status(SETTLE, "the rejected revision", |s| {
            s["etcd"]["rejected_revision"] == rejected
        })
        .await;
    let errors = status["last_error"]["errors"].to_string();
    assert!(
        errors.contains(&format!(
            "etcd:{key}:2:23: routes[0].split[0].upstream: found unknown upstream \\\"nowhere\\\", expected one of `blue`, `green`"
        )),
        "{status:#}"
    );
    assert_eq!(status["version"], good, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");

    // A good push after it applies (and the CAS sees the etcdctl edit as the current state).
    let fixed = fleet.push(gw.config(), "green");
    wait_for_upstream(&gw, "green", SETTLE).await;
    assert_eq!(gw.version().await, fixed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_pushes_from_the_same_revision_exactly_one_wins() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    fleet.push(&config, "blue");
    let settings =
        dyegate::source::fleet::settings(Some(&config.gateway_file())).expect("etcd settings");
    let mut client = store::connect(&settings).await.expect("connect");
    let read = store::read(&mut client, PREFIX, None)
        .await
        .expect("read")
        .expect("a table");
    let expect = store::Expect {
        current_mod: read.current_mod,
        generation: Some(read.generation.clone()),
        read_revision: read.read_revision,
    };
    let green = layout::entries_of(&fleet.routes_to("green")).expect("cut");
    let blue2 = layout::entries_of(&fleet.routes_to("blue").replace("all", "all2")).expect("cut");
    let (a, b) = tokio::join!(
        async {
            let mut c = client.clone();
            store::write(&mut c, PREFIX, &green, layout::EmptyTable::Refused, &expect).await
        },
        async {
            let mut c = client.clone();
            store::write(&mut c, PREFIX, &blue2, layout::EmptyTable::Refused, &expect).await
        }
    );
    let wins = [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    let loser = [a, b].into_iter().find_map(Result::err).expect("one lost");
    assert!(
        loser
            .to_string()
            .contains("the fleet's table changed after revision"),
        "{loser}"
    );
    // Only the winner's generation is left.
    let tables = fleet.etcd.ctl_ok(&[
        "get",
        &format!("{PREFIX}tables/"),
        "--prefix",
        "--keys-only",
    ]);
    let generation = fleet.generation();
    for key in tables.lines().filter(|l| !l.is_empty()) {
        assert!(
            key.starts_with(&format!("{PREFIX}tables/{generation}/")),
            "{key} left over"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_behind_a_compaction_relists_and_misses_nothing() {
    let mut fleet = Fleet::new();
    let config = fleet.config("blue");
    fleet.push(&config, "blue");
    let gw = config.start();
    assert_eq!(answered_by(&gw).await, "blue");
    // The gateway cannot read while stopped; its watch is cut (etcd restarted), and two
    // revisions and a compaction go by: it resumes behind the compaction. (A watch left open
    // would receive the events anyway, and the newest table is all it reads.)
    gw.signal(libc::SIGSTOP);
    fleet.etcd.stop();
    fleet.etcd.start_again();
    fleet.push(gw.config(), "green");
    let last = fleet
        .push_text(
            gw.config(),
            &fleet.routes_to("green").replace("name: all", "name: every"),
        )
        .expect("push");
    fleet.etcd.ctl_ok(&["compact", &last.to_string()]);
    gw.signal(libc::SIGCONT);
    let status = gw
        .wait_for_status(SETTLE, "the last revision", |s| s["version"] == last)
        .await;
    assert!(status["etcd"]["relists"].as_u64() >= Some(1), "{status:#}");
    assert_eq!(answered_by(&gw).await, "green");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_routes_fit_and_are_served() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let many = dyegate_suite::gateway::many_routes_yaml(10_000, 5);
    assert!(
        many.len() > 1_572_864 / 2,
        "a table of {} bytes",
        many.len()
    );
    let revision = fleet
        .push_text(&config, &many)
        .unwrap_or_else(|o| panic!("{o}"));
    let gw = config.start();
    let status = gw.status().await;
    assert_eq!(status["routes"], 10_000, "{status:#}");
    assert_eq!(status["version"], revision, "{status:#}");
    // One edit: one revision, applied.
    let edited = many.replacen("weight: 95", "weight: 90", 1);
    let next = fleet
        .push_text(gw.config(), &edited)
        .unwrap_or_else(|o| panic!("{o}"));
    gw.wait_for_status(Duration::from_secs(30), "the edit", |s| {
        s["version"] == next
    })
    .await;
    let resp = Req::get("/api/v0/x")
        .header("host", "svc0.example.com")
        .send(gw.addr())
        .await;
    assert_ne!(resp.status, http::StatusCode::NOT_FOUND);
}

#[test]
fn routes_and_source_are_exclusive_and_source_errors_are_located() {
    let config = GatewayConfig::new("routes: []\n").gateway_extra(
        "source: { etcd: { endpoints: [\"127.0.0.1:2379\"], prefix: dyegate, dial_timeout_ms: 0, user: x } }",
    );
    let out = config.check();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stdout.contains("source.etcd.user: found unknown field `user`, expected one of `endpoints`, `prefix`, `username`, `password_file`, `dial_timeout_ms`"),
        "{out}"
    );
    let config = GatewayConfig::new("routes: []\n").gateway_extra(
        "source: { etcd: { endpoints: [\"127.0.0.1:2379\"], prefix: dyegate, dial_timeout_ms: 0, gateway_id: \"web 1\", lease_ttl_ms: 1500 } }",
    );
    let out = config.check();
    let text = out.stdout.clone();
    for pinned in [
        "source.etcd.gateway_id: found \"web 1\", expected 1 to 128 printable ASCII characters without spaces, unique per gateway of the fleet",
        "source.etcd.lease_ttl_ms: found 1500, expected whole seconds in milliseconds from 2000 to 60000 (etcd's leases count seconds)",
    ] {
        let line = text.lines().find(|l| l.ends_with(pinned));
        let line = line.unwrap_or_else(|| panic!("no {pinned:?} in {out}"));
        assert!(line.starts_with(&format!("{}:6:", config.gateway_file().display())), "located: {line}");
    }
    assert!(
        text.contains("source: found both `routes` and `source`, expected one of them"),
        "{out}"
    );
    assert!(
        text.contains(
            "source.etcd.endpoints[0]: found \"127.0.0.1:2379\", expected http://HOST:PORT"
        ),
        "{out}"
    );
    assert!(text.contains("source.etcd.prefix: found \"dyegate\", expected a key prefix that starts and ends with `/`"), "{out}");
    assert!(text.contains("source.etcd.dial_timeout_ms: found 0, expected a whole number of milliseconds from 1 to 60000"), "{out}");
    assert!(text.contains("gateway.yaml:6:"), "located: {out}");
}
