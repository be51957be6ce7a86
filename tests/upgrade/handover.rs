//! Zero-downtime binary upgrade, end to end: the real `dyegate upgrade` replacing a real running
//! gateway under continuous load, with the listening socket followed by inode through `/proc`.
//!
//! The gateways here use a 10 s grace period: long enough that an old process exiting "as soon as
//! it is idle" is told apart from one that waits out its grace period. Pingora itself keeps the
//! old process accepting for a fixed 5 s after handing the sockets over, so an idle old process
//! exits a little over 5 s after the handover.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use dyegate_suite::procfs::{self, listener_inode, listening_inodes, socket_inodes};
use dyegate_suite::upgrade::under_load::*;
use dyegate_suite::upgrade::{get_once, wait_gone, StatusPoller, Upgradable};
use dyegate_suite::{free_addr, poll_until, Conn, Req, Upstream};
use http::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_upgrades_under_load_fail_no_request_and_keep_the_listening_socket() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let first = gw.gateway().pid();
    let proxy_inode = listener_inode(gw.addr());
    let admin_inode = listener_inode(gw.admin_addr());
    assert!(socket_inodes(first).contains(&proxy_inode));
    assert!(socket_inodes(first).contains(&admin_inode));
    let version = gw.status().await["version"].clone();

    let load = start_load(&gw).await;
    let poller = StatusPoller::start(gw.admin_addr());
    let mut runs = Vec::new();
    let mut pids = vec![first];
    for n in 1..=3 {
        let old = gw.serving_pid().expect("a pid file");
        let run = gw.upgrade_ok().await;
        let new = gw.serving_pid().expect("a pid file");
        assert_eq!(run.old_pid, Some(old), "upgrade {n}: {}", run.output);
        assert_eq!(run.new_pid, Some(new), "upgrade {n}: {}", run.output);
        assert_ne!(
            new, old,
            "upgrade {n}: the pid file still names the old process"
        );
        assert!(
            !procfs::alive(old),
            "upgrade {n}: old process {old} still runs"
        );
        let drained = run.old_exit_after.expect("--wait-old reports the exit");
        assert!(
            drained < GRACE,
            "upgrade {n}: the old process took {drained:?} to exit (grace {GRACE:?})"
        );
        assert_eq!(
            listener_inode(gw.addr()),
            proxy_inode,
            "upgrade {n}: the proxy listener was bound again instead of inherited"
        );
        assert!(socket_inodes(new).contains(&proxy_inode), "upgrade {n}");
        assert_eq!(listener_inode(gw.admin_addr()), admin_inode, "upgrade {n}");
        assert!(socket_inodes(new).contains(&admin_inode), "upgrade {n}");
        assert!(
            load.wait_for_more_ok(50, SERVES_WITHIN).await,
            "upgrade {n}: no answers from the new process: {}",
            load.report()
        );
        pids.push(new);
        runs.push(run);
    }
    let report = load.stop().await;
    let status = poller.stop().await;

    print_figures("three upgrades under load", &runs, &report);
    println!(
        "  /status polled {} times, {} failures, longest gap {:?}, pids {:?}, {} answers from a \
         draining process",
        status.answered.len() + status.failures.len(),
        status.failures.len(),
        status.longest_gap,
        status.pids(),
        status
            .answered
            .iter()
            .filter(|s| s.draining == Some(true))
            .count()
    );
    assert_clean(&report, &gw);
    assert!(
        status.failures.is_empty(),
        "GET /status failed during the upgrades: {:?}",
        status.failures
    );
    assert!(
        status.longest_gap < Duration::from_secs(3),
        "GET /status went unanswered for {:?}",
        status.longest_gap
    );
    assert_eq!(
        status.pids(),
        pids.iter().map(|p| u64::from(*p)).collect::<Vec<_>>(),
        "every process in turn answers /status"
    );
    assert_eq!(
        status.versions(),
        vec![version.as_u64().expect("a version")]
    );
    assert_eq!(
        gw.processes(),
        vec![*pids.last().expect("a pid")],
        "only the last process runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_at_the_handover_complete_on_the_old_process() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let old = gw.gateway().pid();

    // The case (3 s), and one that outlasts Pingora's fixed 5 s before shutdown, to see
    // the old process wait for it and then exit at once rather than at the end of its grace.
    let mut slow = Conn::http1(gw.addr()).await;
    let mut slower = Conn::http1(gw.addr()).await;
    let slow = tokio::spawn(async move {
        let resp = slow.send(Req::get("/slow?ms=3000")).await;
        (resp, Instant::now())
    });
    let slower = tokio::spawn(async move {
        let resp = slower.send(Req::get("/slow?ms=10000")).await;
        (resp, Instant::now())
    });
    let both_at_upstream = dyegate_suite::wait_until_async(SERVES_WITHIN, || async {
        up.requests().iter().filter(|r| r.path == "/slow").count() == 2
    })
    .await;
    assert!(
        both_at_upstream,
        "the slow requests never reached the upstream"
    );
    assert_eq!(gw.status().await["in_flight"], 2);

    let run = gw.upgrade(&["--wait-old"]).await;
    let exited = Instant::now();
    assert_eq!(run.output.code, Some(0), "{}\n{}", run.output, gw.logs());
    let (slow, slow_done) = slow.await.expect("the 3 s request");
    let (slower, slower_done) = slower.await.expect("the 10 s request");
    println!("slow requests across an upgrade: {run}");

    for (resp, what) in [(&slow, "3 s"), (&slower, "10 s")] {
        assert_eq!(resp.status, StatusCode::OK, "{what}: {}", resp.text());
        assert_eq!(resp.upstream(), Some("stable"), "{what}");
        // Only a process that is handing over closes the connection after a response.
        assert_eq!(
            resp.header("connection"),
            Some("close"),
            "{what}: not answered by the draining process"
        );
    }
    assert!(slow_done < slower_done);
    assert_eq!(
        up.requests().iter().filter(|r| r.path == "/slow").count(),
        2,
        "a slow request was sent to the upstream again"
    );
    // The old process waited for the 10 s request, then went as soon as it was idle.
    assert_eq!(run.old_pid, Some(old));
    assert!(!procfs::alive(old));
    // The 10 s request ends well after Pingora's fixed 5 s, so an old process that did not wait
    // for it would have exited first; one that waited its whole grace would exit 5 s + 10 s in.
    let drained = run.old_exit_after.expect("--wait-old reports the exit");
    assert!(
        drained > Duration::from_secs(6) && drained < PINGORA_CLOSE_TIMEOUT + GRACE,
        "handover to exit: {drained:?}"
    );
    let lingered = exited.saturating_duration_since(slower_done);
    assert!(
        lingered < Duration::from_secs(1),
        "the old process lingered {lingered:?} after its last response"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_removed_from_gateway_yaml_stops_listening_after_the_upgrade() {
    let up = Upstream::start("stable");
    let config = config(&up);
    let kept = config.proxy_addr();
    let removed = free_addr();
    edit_gateway(
        &config,
        &format!("listen: [\"{kept}\"]"),
        &format!("listen: [\"{kept}\", \"{removed}\"]"),
    );
    let gw = Upgradable::start(config).await;
    assert_serves(removed).await;
    let inode = listener_inode(kept);

    edit_gateway(
        gw.config(),
        &format!("listen: [\"{kept}\", \"{removed}\"]"),
        &format!("listen: [\"{kept}\"]"),
    );
    gw.upgrade_ok().await;

    let refused = TcpStream::connect_timeout(&removed, Duration::from_secs(2));
    assert_eq!(
        refused.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{removed} still accepts connections: {refused:?}\n{}",
        gw.logs()
    );
    assert!(listening_inodes(removed).is_empty());
    assert_serves(kept).await;
    assert_eq!(listener_inode(kept), inode);
}

async fn assert_serves(addr: SocketAddr) {
    let resp = Req::get("/").send(addr).await;
    assert_eq!(resp.status, StatusCode::OK, "{addr}: {}", resp.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn version_numbers_and_history_continue_across_the_upgrade() {
    let up = Upstream::start("stable");
    let config = config(&up);
    append_gateway(&config, "reload: { watch: false }\n");
    let gw = Upgradable::start(config).await;

    // Version 2: a second route, applied with SIGHUP.
    let mut second = routes(&up);
    second.push_str("  - name: api\n    match: { path_prefix: /api }\n    split: [{ upstream: stable, weight: 1 }]\n");
    gw.config().write("routes.yaml", &second);
    reload(&gw, 2).await;
    let versions = get_json(&gw, "/versions").await;

    gw.upgrade_ok().await;

    let status = gw.status().await;
    assert_ne!(status["pid"], gw.gateway().pid());
    assert_eq!(status["version"], 2, "{status:#}");
    assert_eq!(get_json(&gw, "/versions").await, versions);
    // The next change is version 3, recorded by the new process.
    let mut third = second.clone();
    third.push_str("  - name: web\n    match: { path_prefix: /web }\n    split: [{ upstream: stable, weight: 1 }]\n");
    gw.config().write("routes.yaml", &third);
    reload(&gw, 3).await;
    // The history kept before the upgrade still serves a rollback: version 4 restores version 2.
    let (code, body) = post(&gw, "/rollback").await;
    assert_eq!(code, 200, "{body:#}");
    let status = gw.status().await;
    assert_eq!(status["version"], 4, "{status:#}");
    let kept = &versions["versions"];
    let v2 = kept
        .as_array()
        .and_then(|list| list.iter().find(|v| v["version"] == 2))
        .unwrap_or_else(|| panic!("no version 2 in {versions:#}"));
    assert_eq!(status["sha256"], v2["sha256"], "{status:#}");
}

/// SIGHUP to the serving process; waits until `/status` reports `version`.
async fn reload(gw: &Upgradable, version: u64) {
    let pid = gw.serving_pid().expect("a pid file");
    procfs::signal(pid, libc::SIGHUP).expect("SIGHUP");
    let reloaded = dyegate_suite::wait_until_async(SERVES_WITHIN, || async {
        gw.status().await["version"] == version
    })
    .await;
    assert!(
        reloaded,
        "no version {version}: {:#}\n{}",
        gw.status().await,
        gw.logs()
    );
}

async fn get_json(gw: &Upgradable, path: &str) -> serde_json::Value {
    match get_once(gw.admin_addr(), path).await {
        Ok((200, json)) => json,
        other => panic!("GET {path}: {other:?}"),
    }
}

async fn post(gw: &Upgradable, path: &str) -> (u16, serde_json::Value) {
    let resp = Req::post(path).send(gw.admin_addr()).await;
    (
        resp.status.as_u16(),
        serde_json::from_slice(&resp.body).unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_keep_alive_connections_are_closed_by_the_old_process_and_used_ones_told_to_close() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let old = gw.gateway().pid();

    // Two kept-alive connections to the old process, then idle.
    let mut idle = Conn::http1(gw.addr()).await;
    let mut reused = Conn::http1(gw.addr()).await;
    for conn in [&mut idle, &mut reused] {
        let resp = conn.send(Req::get("/before")).await;
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.header("connection"), Some("keep-alive"));
    }

    let upgrade = gw.upgrade(&["--wait-old"]);
    // While the old process drains (Pingora keeps it for 5 s after the handover), a request on a
    // connection it already had is still served, and told to close.
    let draining = async {
        let drains = dyegate_suite::wait_until_async(SERVES_WITHIN, || async {
            gw.serving_pid().is_some_and(|pid| pid != old)
        })
        .await;
        assert!(drains, "no new process took over\n{}", gw.logs());
        let resp = reused.send(Req::get("/during")).await;
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.header("connection"), Some("close"));
    };
    let (run, ()) = tokio::join!(upgrade, draining);
    assert_eq!(run.output.code, Some(0), "{}\n{}", run.output, gw.logs());
    assert!(!procfs::alive(old));

    // The idle connection was closed by the old process when it exited (FIN, seen by the client
    // before it sends anything), not left to fail the next request.
    let closed =
        dyegate_suite::wait_until_async(Duration::from_secs(2), || async { idle.is_closed() })
            .await;
    assert!(
        closed,
        "the idle connection to the old process is still open"
    );
    assert!(reused.is_closed());
    assert_serves(gw.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn back_to_back_upgrades_without_waiting_for_the_old_processes_fail_no_request() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let proxy_inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    // Each upgrade returns once the new process is ready; the next one starts at once, while the
    // previous old process is still draining.
    let mut olds = Vec::new();
    let mut runs = Vec::new();
    for n in 1..=3 {
        let run = gw.upgrade(&[]).await;
        assert_eq!(
            run.output.code,
            Some(0),
            "upgrade {n}:\n{}\n{}",
            run.output,
            gw.logs()
        );
        assert_eq!(
            gw.serving_pid(),
            run.new_pid,
            "upgrade {n}: the pid file does not name the new process"
        );
        olds.push(run.old_pid.expect("the old pid"));
        runs.push(run);
    }
    let started_draining = Instant::now();
    for old in &olds {
        assert!(
            wait_gone(*old, PINGORA_CLOSE_TIMEOUT + GRACE).await,
            "old process {old} still runs {:?} after the last upgrade",
            started_draining.elapsed()
        );
    }
    assert!(load.wait_for_more_ok(50, SERVES_WITHIN).await);
    let report = load.stop().await;

    print_figures("three back-to-back upgrades", &runs, &report);
    assert_clean(&report, &gw);
    assert_eq!(listener_inode(gw.addr()), proxy_inode);
    let last = runs.last().and_then(|r| r.new_pid).expect("a last pid");
    assert_eq!(gw.processes(), vec![last]);
}

/// `pingora.runtime: per_core`: one `SO_REUSEPORT` listening socket per runtime on the one
/// address. An upgrade under load hands every one of them over (the same inodes, now held by
/// the new process) and fails no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_core_listening_sockets_are_all_inherited_by_an_upgrade_under_load() {
    let up = Upstream::start("stable");
    let config = config(&up);
    edit_gateway(&config, "threads: 2,", "threads: 2, runtime: per_core,");
    let gw = Upgradable::start(config).await;
    let first = gw.gateway().pid();
    let inodes = two_listening(gw.addr()).await;
    assert_eq!(
        inodes.len(),
        2,
        "one listening socket per runtime: {inodes:?}"
    );
    let held = socket_inodes(first);
    assert!(
        inodes.iter().all(|i| held.contains(i)),
        "{inodes:?} not all in {held:?}"
    );

    let load = start_load(&gw).await;
    let run = gw.upgrade_ok().await;
    let new = gw.serving_pid().expect("a pid file");
    assert_eq!(run.new_pid, Some(new), "{}", run.output);
    assert_ne!(new, first);
    assert_eq!(
        listening_inodes(gw.addr()),
        inodes,
        "the per-core sockets were bound again instead of inherited\n{}",
        gw.logs()
    );
    let held = socket_inodes(new);
    assert!(
        inodes.iter().all(|i| held.contains(i)),
        "{inodes:?} not all in {held:?}"
    );
    assert!(
        load.wait_for_more_ok(50, SERVES_WITHIN).await,
        "no answers from the new process: {}",
        load.report()
    );
    let report = load.stop().await;
    print_figures("per-core upgrade under load", &[run], &report);
    assert_clean(&report, &gw);
}

/// A gateway listening with `runtime: shared` (no `SO_REUSEPORT`) upgraded to a gateway.yaml
/// that asks for `per_core`: the new process cannot bind sockets beside the inherited one, so
/// it serves that one socket with `shared` (and says so) instead of losing its listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgrade_from_shared_to_per_core_keeps_the_inherited_socket() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    edit_gateway(gw.config(), "threads: 2,", "threads: 2, runtime: per_core,");
    let run = gw.upgrade_ok().await;
    assert_eq!(run.new_pid, gw.serving_pid(), "{}", run.output);
    assert_eq!(
        listener_inode(gw.addr()),
        inode,
        "the socket was not inherited\n{}",
        gw.logs()
    );
    assert!(
        load.wait_for_more_ok(50, SERVES_WITHIN).await,
        "no answers from the new process: {}",
        load.report()
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert!(
        gw.logs().contains("serving it with runtime shared"),
        "no warning about the fallback in the logs:\n{}",
        gw.logs()
    );
}

/// The listening sockets on `addr` once there are two (the runtimes start one after the other:
/// the first may answer before the second listens), or what there is after 10 s.
async fn two_listening(addr: SocketAddr) -> std::collections::BTreeSet<u64> {
    let two = poll_until(
        Duration::from_secs(10),
        || std::future::ready(listening_inodes(addr)),
        |inodes| inodes.len() >= 2,
    );
    two.await.unwrap_or_else(|inodes| inodes)
}
