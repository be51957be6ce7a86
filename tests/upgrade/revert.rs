//! Automatic revert (`upgrade.watch_ms`, `upgrade.max_error_rate`): a new binary that crashes,
//! hangs or fails requests during the watch is replaced by the old binary again, under load,
//! with no connection refused; `dyegate upgrade` reports `reverted` and why; the audit log has
//! the verdict; the pid file names the serving process before the old one exits (what systemd's
//! `PIDFile=` needs); SIGTERM during a watch (`systemctl stop`) reaches the new process.

use std::time::Duration;

use dyegate_suite::load::Report;
use dyegate_suite::procfs;
use dyegate_suite::procfs::listener_inode;
use dyegate_suite::upgrade::failing::{crashing_after, freezing_after, serving_with};
use dyegate_suite::upgrade::under_load::*;
use dyegate_suite::upgrade::{get_once, wait_gone, Upgradable, UpgradeRun};
use dyegate_suite::{free_addr, GatewayConfig, Upstream};
use serde_json::Value;

/// A watch long enough for a binary that fails 2 s after the handover, on a loaded machine.
const LONG_WATCH: &str = "upgrade: { watch_ms: 20000 }";

fn watched_config(up: &Upstream) -> GatewayConfig {
    let config = config(up);
    edit_gateway(&config, WATCH_LINE, LONG_WATCH);
    config
}

/// What changed in the load's counts between two reports.
fn delta(before: &Report, after: &Report) -> (u64, u64, u64) {
    (
        after.connect_errors - before.connect_errors,
        after.request_errors - before.request_errors,
        after.bad_status - before.bad_status,
    )
}

/// The audit log's verdict lines.
fn verdicts(gw: &Upgradable) -> Vec<Value> {
    gw.config()
        .read("state/audit.log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "upgrade")
        .collect()
}

/// The upgrade ended in a revert: exit 1, the reason on stderr, the old binary's new process
/// serving (named in the pid file, answering /status) while the old one still runs or after.
async fn assert_reverted(gw: &Upgradable, run: &UpgradeRun, reason_starts: &str) -> u32 {
    assert_eq!(run.output.code, Some(1), "{}\n{}", run.output, gw.logs());
    let verdict = run.verdict.as_deref().unwrap_or_default();
    assert!(
        verdict.starts_with(&format!("reverted: {reason_starts}")),
        "{}",
        run.output
    );
    let back = run.reverted_to.expect("the pid that serves again");
    assert_eq!(
        run.output.stderr,
        format!("dyegate upgrade: {verdict}\n"),
        "{}",
        run.output
    );
    assert_eq!(
        gw.serving_pid(),
        Some(back),
        "the pid file does not name {back}"
    );
    // The old process may still answer for the rest of Pingora's 5 s of accepting.
    let serves = dyegate_suite::wait_until_async(SERVES_WITHIN, || async {
        gw.status().await["pid"] == back
    })
    .await;
    assert!(serves, "{}\n{}", run.output, gw.logs());
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_binary_that_crashes_two_seconds_in_is_reverted_three_times_without_a_refused_connection(
) {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(watched_config(&up)).await;
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;
    let binary = crashing_after(gw.config(), 2);
    let mut failed_on_dead = Vec::new();
    for n in 1..=3 {
        let old = gw.serving_pid().expect("a pid file");
        let before = load.report();
        let run = gw.upgrade(&["--binary", &binary, "--wait-old"]).await;
        let back = assert_reverted(&gw, &run, "new process ").await;
        let crashed = run.new_pid.expect("the new process was ready once");
        assert!(
            run.verdict
                .as_deref()
                .unwrap_or_default()
                .contains(&format!("new process {crashed} exited ")),
            "upgrade {n}: {}",
            run.output
        );
        assert_ne!(back, old);
        assert!(
            !procfs::alive(crashed) && !procfs::alive(old),
            "upgrade {n}"
        );
        // What systemd's PIDFile= needs: when the old pid went, the file named the live one.
        assert_eq!(gw.serving_pid(), Some(back), "upgrade {n}");
        assert!(procfs::alive(back), "upgrade {n}");
        assert!(
            load.wait_for_more_ok(50, SERVES_WITHIN).await,
            "upgrade {n}: {}",
            load.report()
        );
        let (refused, broken, non_2xx) = delta(&before, &load.report());
        println!("revert {n}: {run}; refused {refused}, failed on the dead process {broken}, non-2xx {non_2xx}");
        assert_eq!(
            refused,
            0,
            "upgrade {n}: refused connections\n{}",
            load.report()
        );
        assert_eq!(non_2xx, 0, "upgrade {n}: {}", load.report());
        // At most the requests in flight on the dead process: one per load client.
        assert!(
            broken <= 6,
            "upgrade {n}: {broken} failed requests\n{}",
            load.report()
        );
        failed_on_dead.push(broken);
    }
    let report = load.stop().await;
    println!("three reverts under load: {report}; failed on the dead process: {failed_on_dead:?}");
    assert_eq!(report.connect_errors, 0, "{report}");
    assert_eq!(
        listener_inode(gw.addr()),
        inode,
        "the listening socket was bound again"
    );

    let status = gw.status().await;
    let process = &status["process"];
    assert_eq!(process["generation"], 6, "{status:#}");
    let kinds: Vec<&str> = (process["handovers"].as_array().expect("handovers").iter())
        .filter_map(|h| h["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["upgrade", "revert", "upgrade", "revert", "upgrade", "revert"]
    );
    let reverts = verdicts(&gw);
    assert_eq!(reverts.len(), 3, "{reverts:#?}");
    for v in &reverts {
        assert_eq!(v["result"], "reverted", "{v:#}");
        assert!(
            v["reason"].as_str().is_some_and(|r| r.contains(" exited ")),
            "{v:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_binary_that_fails_requests_is_reverted_and_the_old_one_keeps_its_routes() {
    let up = Upstream::start("stable");
    let config = watched_config(&up);
    // The new binary serves a table whose only upstream refuses connections: 502s.
    config.write(
        "routes-bad.yaml",
        &format!(
            "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n\
             routes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
            free_addr()
        ),
    );
    let text = std::fs::read_to_string(config.gateway_file()).expect("gateway.yaml");
    config.write(
        "gateway-bad.yaml",
        &text.replacen("routes: routes.yaml", "routes: routes-bad.yaml", 1),
    );
    let gw = Upgradable::start(config).await;
    let load = start_load(&gw).await;
    let binary = serving_with(gw.config(), "gateway-bad.yaml");
    let run = gw.upgrade(&["--binary", &binary]).await;
    let back = assert_reverted(&gw, &run, "new process ").await;
    let verdict = run.verdict.clone().unwrap_or_default();
    assert!(
        verdict.contains(" failed ") && verdict.contains("% > 10.0%)"),
        "{}",
        run.output
    );
    assert!(load.wait_for_more_ok(50, SERVES_WITHIN).await);
    let report = load.stop().await;
    println!("revert on the error rate: {run}\n  load: {report}");
    assert_eq!(report.connect_errors, 0, "{report}");
    // Served by the old binary's table again.
    let after = dyegate_suite::Req::get("/after").send(gw.addr()).await;
    assert_eq!(after.upstream(), Some("stable"));
    assert!(wait_gone(run.new_pid.expect("a new pid"), Duration::from_secs(30)).await);
    assert_eq!(gw.serving_pid(), Some(back));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_process_that_stops_answering_is_reverted() {
    let up = Upstream::start("stable");
    let config = watched_config(&up);
    edit_gateway(
        &config,
        "grace_period_seconds: 10 ",
        "grace_period_seconds: 2 ",
    );
    let gw = Upgradable::start(config).await;
    let binary = freezing_after(gw.config(), 2);
    let run = gw.upgrade(&["--binary", &binary]).await;
    let back = assert_reverted(&gw, &run, "new process ").await;
    assert!(
        run.verdict
            .as_deref()
            .unwrap_or_default()
            .contains(" stopped answering /readyz (3 probes in a row; last: "),
        "{}",
        run.output
    );
    // The frozen process is killed once its grace period is over.
    let frozen = run.new_pid.expect("a new pid");
    assert!(
        wait_gone(frozen, Duration::from_secs(30)).await,
        "{frozen} still runs"
    );
    assert_eq!(gw.serving_pid(), Some(back));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healthy_new_binary_is_kept_and_stop_during_a_watch_reaches_it() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(watched_config(&up)).await;
    let old = gw.gateway().pid();
    // An upgrade whose watch is interrupted by SIGTERM to the old process (`systemctl stop`
    // signals the unit's main pid, the old one during the watch).
    let upgrade = gw.upgrade(&[]);
    let stop = async {
        let watched = dyegate_suite::poll_until(
            SERVES_WITHIN,
            || async { get_once(gw.admin_addr(), "/status").await },
            |s| matches!(s, Ok((200, s)) if s["pid"] != old && s["process"]["watched"]["by_pid"] == old),
        )
        .await;
        let Ok(Ok((_, status))) = watched else {
            panic!("the new process never said it is watched\n{}", gw.logs());
        };
        procfs::signal(old, libc::SIGTERM).expect("SIGTERM");
        status["pid"].as_u64().expect("a pid") as u32
    };
    // The command may see the verdict before the new process's readiness: the pid comes from
    // the new process's own /status.
    let (run, new) = tokio::join!(upgrade, stop);
    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert!(run.verdict.as_deref().unwrap_or_default().starts_with(&format!("stopped during the watch (SIGTERM to old process {old}); new process {new} was told to stop too")), "{}", run.output);
    // The new process went first, then the old one (the unit's main pid) last.
    assert!(wait_gone(new, Duration::from_secs(30)).await);
    assert!(wait_gone(old, Duration::from_secs(30)).await);
    assert!(
        gw.processes().is_empty() || gw.processes() == vec![old],
        "{:?}",
        gw.processes()
    );
}

#[test]
fn the_systemd_unit_follows_the_pid_file_and_restarts_only_its_main_process() {
    let unit = std::fs::read_to_string(
        dyegate_suite::gateway::workspace_root().join("conf/dyegate.service"),
    )
    .expect("unit");
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
            .to_string()
    };
    // Forking + PIDFile: systemd re-reads the pid file when the main pid exits, so the main pid
    // moves to whoever wrote it last (the new process, or the old binary's after a revert); the
    // tests above check the file names the serving process when the old one exits.
    assert_eq!(value("Type"), "forking");
    assert_eq!(value("PIDFile"), "/run/dyegate/dyegate.pid");
    // on-failure restarts for the main pid only: during a watch that is the old process, which
    // survives a crash of the new one and exits 0 after a revert.
    assert_eq!(value("Restart"), "on-failure");
    assert_eq!(value("KillMode"), "mixed");
    // A stop during a watch: the old process passes SIGTERM on and waits for the new one's
    // drain (grace_period_seconds + 5 s at most, 30 + 5 in the packaged gateway.yaml) before
    // it exits: within TimeoutStopSec.
    assert!(value("TimeoutStopSec").parse::<u64>().expect("seconds") > 35);
    // And the unit is valid to systemd itself (paths pointed at this build).
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("dyegate.service");
    let bin = dyegate_suite::gateway::dyegate_bin().display().to_string();
    std::fs::write(&copy, unit.replace("/usr/local/bin/dyegate", &bin)).expect("write");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    // verify exits 0 on a directive it cannot parse (it only warns): any output is a failure.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.is_empty(), "{said}");
}
