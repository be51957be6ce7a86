//! Zero-downtime binary upgrade, end to end: the real `dyegate upgrade` replacing a real running
//! gateway under continuous load, with the listening socket followed by inode through `/proc`.
//!
//! The gateways here use a 10 s grace period: long enough that an old process exiting "as soon as
//! it is idle" is told apart from one that waits out its grace period. Pingora itself keeps the
//! old process accepting for a fixed 5 s after handing the sockets over, so an idle old process
//! exits a little over 5 s after the handover.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use dyegate_suite::gateway::GATEWAY_FILE;
use dyegate_suite::load::{Load, Report, Shape};
use dyegate_suite::procfs::{self, listener_inode, listening_inodes, socket_inodes};
use dyegate_suite::upgrade::{
    get_once, wait_gone, with_grace, write_executable, StatusPoller, Upgradable, UpgradeRun,
    PID_FILE, UPGRADE_SOCK,
};
use dyegate_suite::{free_addr, Conn, GatewayConfig, Req, Upstream};
use http::StatusCode;

/// `pingora.grace_period_seconds` of every gateway in this file.
const GRACE: Duration = Duration::from_secs(10);

/// Pingora's fixed wait between handing the sockets over and broadcasting shutdown; the grace
/// period only starts after it.
const PINGORA_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a fresh load must keep getting answers to show that the (new) gateway serves.
const SERVES_WITHIN: Duration = Duration::from_secs(10);

fn routes(up: &Upstream) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target()
    )
}

fn config(up: &Upstream) -> GatewayConfig {
    with_grace(GatewayConfig::new(&routes(up)), GRACE.as_secs())
}

/// Appends whole top-level lines to gateway.yaml.
fn append_gateway(config: &GatewayConfig, extra: &str) {
    let text = std::fs::read_to_string(config.gateway_file()).expect("reading gateway.yaml");
    config.write(GATEWAY_FILE, &format!("{text}{extra}"));
}

/// Replaces `from` by `to` in gateway.yaml, exactly once.
fn edit_gateway(config: &GatewayConfig, from: &str, to: &str) {
    let text = std::fs::read_to_string(config.gateway_file()).expect("reading gateway.yaml");
    assert!(text.contains(from), "no {from:?} in gateway.yaml:\n{text}");
    config.write(GATEWAY_FILE, &text.replacen(from, to, 1));
}

/// Starts the load and waits until it gets answers, so a failure later is the upgrade's fault.
async fn start_load(gw: &Upgradable) -> Load {
    let load = Load::start(gw.addr(), Shape::default());
    assert!(
        load.wait_for_more_ok(50, SERVES_WITHIN).await,
        "the load got no answers: {}\n{}",
        load.report(),
        gw.logs()
    );
    load
}

fn assert_clean(report: &Report, gw: &Upgradable) {
    assert!(
        report.is_clean() && report.sent > 0,
        "the load saw failures: {report}\n{}",
        gw.logs()
    );
}

/// Asserts that a refused upgrade changed nothing: same pid serving and named in the pid file,
/// no other process on the dir, the same listening socket, no upgrade socket left behind.
async fn assert_untouched(gw: &Upgradable, pid: u32, inode: u64) {
    assert_eq!(gw.serving_pid(), Some(pid), "the pid file changed");
    assert!(
        procfs::alive(pid),
        "pid {pid} no longer runs\n{}",
        gw.logs()
    );
    assert_eq!(
        gw.status().await["pid"],
        pid,
        "another process answers /status"
    );
    assert_eq!(
        gw.processes(),
        vec![pid],
        "only the old process should run on the dir"
    );
    assert_eq!(listener_inode(gw.addr()), inode, "the listener changed");
    assert!(
        !gw.config().path(UPGRADE_SOCK).exists(),
        "an upgrade socket was left behind"
    );
}

fn print_figures(what: &str, runs: &[UpgradeRun], report: &Report) {
    println!("{what}: {report}");
    for (i, run) in runs.iter().enumerate() {
        println!("  upgrade {}: {run}", i + 1);
    }
}

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
async fn invalid_routes_refuse_the_upgrade_before_any_socket_moves() {
    let up = Upstream::start("stable");
    let config = config(&up);
    // The running gateway must not pick the broken file up itself.
    append_gateway(&config, "reload: { watch: false }\n");
    let gw = Upgradable::start(config).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    gw.config().write(
        "routes.yaml",
        &format!(
            "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n\
             routes:\n  - name: all\n    split: [{{ upstream: canary, weight: 1 }}]\n",
            up.target()
        ),
    );
    let check = gw.config().check();
    assert_eq!(check.code, Some(1), "{check}");
    let run = gw.upgrade(&["--wait-old"]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: {}new binary rejects the current configuration; nothing was \
             changed, pid {pid} keeps serving\n",
            check.stdout
        )
    );
    assert!(
        load.wait_for_more_ok(50, SERVES_WITHIN).await,
        "{}",
        load.report()
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

/// A stand-in for a new binary: `check` is the real one, `run` is `run_body` (shell).
fn fake_binary(gw: &Upgradable, run_body: &str) -> String {
    let real = dyegate_suite::gateway::dyegate_bin().display().to_string();
    let path = write_executable(
        gw.config(),
        "new-dyegate",
        &format!(
            "#!/bin/sh\n\
             if [ \"$1\" = check ]; then exec \"{real}\" \"$@\"; fi\n\
             {run_body}\n"
        ),
    );
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_binary_that_dies_at_start_leaves_the_old_one_serving() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    let binary = fake_binary(&gw, "echo \"cannot start: out of luck\" >&2\nexit 3");
    let run = gw.upgrade(&["--binary", &binary]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    let sock = gw.config().path(UPGRADE_SOCK);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: new process exited (exit status: 3) before opening the upgrade \
             socket {}; pid {pid} keeps serving.\n  | cannot start: out of luck\n",
            sock.display()
        )
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_binary_that_never_opens_the_upgrade_socket_is_stopped() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    let binary = fake_binary(&gw, "echo hanging >&2\nexec sleep 60");
    let run = gw.upgrade(&["--binary", &binary, "--timeout", "2"]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    let sock = gw.config().path(UPGRADE_SOCK);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: upgrade socket {} missing: the new process did not open it within \
             2s; it was stopped, pid {pid} keeps serving.\n  | hanging\n",
            sock.display()
        )
    );
    let started: u32 = run
        .output
        .line_starting_with("[2/5] started new process ")
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .unwrap_or_else(|| panic!("no started pid in {}", run.output));
    assert!(
        !procfs::alive(started),
        "the hanging new process was left running"
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_or_missing_pid_file_is_refused_and_the_gateway_keeps_serving() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let pid_file = gw.config().path(PID_FILE);
    let load = start_load(&gw).await;

    // A process that has exited.
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead = gone.id();
    gone.wait().expect("wait for true");
    gw.config().write(PID_FILE, &format!("{dead}\n"));
    let run = gw.upgrade(&[]).await;
    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: stale pid file {}: process {dead} is not running; start dyegate \
             with `dyegate run` instead of upgrading\n",
            pid_file.display()
        )
    );

    // A live process that is not dyegate (the pid was reused).
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    gw.config().write(PID_FILE, &format!("{}\n", other.id()));
    let run = gw.upgrade(&[]).await;
    assert!(
        procfs::alive(other.id()),
        "the upgrade signalled a foreign process"
    );
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: stale pid file {}: process {} is not dyegate\n",
            pid_file.display(),
            other.id()
        )
    );

    // No pid file at all.
    std::fs::remove_file(&pid_file).expect("removing the pid file");
    let run = gw.upgrade(&[]).await;
    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: cannot read pid file {}: No such file or directory (os error 2); \
             is dyegate running with this gateway.yaml?\n",
            pid_file.display()
        )
    );

    gw.config().write(PID_FILE, &format!("{pid}\n"));
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_upgrade_socket_directory_is_refused() {
    let up = Upstream::start("stable");
    let config = config(&up);
    // The running gateway only uses the upgrade socket when it hands over, so it starts fine.
    edit_gateway(
        &config,
        &format!("upgrade_sock: ./{UPGRADE_SOCK}"),
        &format!("upgrade_sock: ./no-such-dir/{UPGRADE_SOCK}"),
    );
    let gw = Upgradable::start(config).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    let run = gw.upgrade(&[]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    let sock = gw.config().dir().join("no-such-dir").join(UPGRADE_SOCK);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: upgrade socket directory of {} does not exist; nothing was \
             changed, pid {pid} keeps serving\n",
            sock.display()
        )
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgrade_while_another_is_in_progress_is_refused() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());

    let lock_path = gw.config().path(&format!("{UPGRADE_SOCK}.lock"));
    let lock = hold_flock(&lock_path);
    let run = gw.upgrade(&[]).await;
    drop(lock);

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: an upgrade is already in progress (lock {} is held); nothing was \
             changed\n",
            lock_path.display()
        )
    );
    assert_untouched(&gw, pid, inode).await;
}

/// Takes the exclusive `flock` that `dyegate upgrade` takes; released when the file drops.
fn hold_flock(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    // SAFETY: flock(2) on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock {}", path.display());
    file
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pid_file_naming_another_gateway_is_refused_and_that_gateway_left_alone() {
    // Two gateways on one host; this one's pid file is stale and its pid now belongs to the
    // other one (pids wrap: pid_max is often 32768).
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let neighbour = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let other = neighbour.gateway().pid();
    let load = Load::start(neighbour.addr(), Shape::default());
    assert!(load.wait_for_more_ok(50, SERVES_WITHIN).await);
    gw.config().write(PID_FILE, &format!("{other}\n"));

    let run = gw.upgrade(&["--timeout", "5"]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert!(
        run.output.stderr.contains(&format!(
            "it names pid {other}, but the dyegate answering on"
        )),
        "{}",
        run.output
    );
    // The neighbour was not told to hand over: it still runs and serves, and does not drain.
    assert!(
        !neighbour
            .logs()
            .contains("SIGQUIT received, sending socks and gracefully exiting"),
        "the upgrade signalled the other gateway:\n{}",
        neighbour.logs()
    );
    let still =
        dyegate_suite::wait_until_async(PINGORA_CLOSE_TIMEOUT + Duration::from_secs(2), || async {
            !procfs::alive(other)
        })
        .await;
    assert!(!still, "the other gateway exited:\n{}", neighbour.logs());
    let report = load.stop().await;
    assert_clean(&report, &neighbour);
    gw.config().write(PID_FILE, &format!("{pid}\n"));
    assert_untouched(&gw, pid, listener_inode(gw.addr())).await;
}
