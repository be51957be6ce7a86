//! What the upgrade tests share: a gateway with a 10 s grace period, load, and the checks that
//! no request failed and the listening socket stayed the same.

use std::time::Duration;

use crate::gateway::GATEWAY_FILE;
use crate::load::{Load, Report, Shape};
use crate::procfs::{self, listener_inode};
use crate::upgrade::{with_grace, Upgradable, UpgradeRun, UPGRADE_SOCK};
use crate::{GatewayConfig, Upstream};

/// `pingora.grace_period_seconds` of every gateway in this file.
pub const GRACE: Duration = Duration::from_secs(10);

/// Pingora's fixed wait between handing the sockets over and broadcasting shutdown; the grace
/// period only starts after it.
pub const PINGORA_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a fresh load must keep getting answers to show that the (new) gateway serves.
pub const SERVES_WITHIN: Duration = Duration::from_secs(10);

pub fn routes(up: &Upstream) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target()
    )
}

pub fn config(up: &Upstream) -> GatewayConfig {
    let config = with_grace(GatewayConfig::new(&routes(up)), GRACE.as_secs());
    append_gateway(&config, &format!("{WATCH_LINE}\n"));
    config
}

/// `upgrade.watch_ms` of the gateways of [`config`]: shorter than Pingora's fixed 5 s of
/// accepting after the handover, so the old process exits when it would without a watch.
pub const WATCH_MS: u64 = 3000;

/// The line of gateway.yaml that sets it (for tests that set their own).
pub const WATCH_LINE: &str = "upgrade: { watch_ms: 3000 }";

/// Appends whole top-level lines to gateway.yaml.
pub fn append_gateway(config: &GatewayConfig, extra: &str) {
    let text = std::fs::read_to_string(config.gateway_file()).expect("reading gateway.yaml");
    config.write(GATEWAY_FILE, &format!("{text}{extra}"));
}

/// Replaces `from` by `to` in gateway.yaml, exactly once.
pub fn edit_gateway(config: &GatewayConfig, from: &str, to: &str) {
    let text = std::fs::read_to_string(config.gateway_file()).expect("reading gateway.yaml");
    assert!(text.contains(from), "no {from:?} in gateway.yaml:\n{text}");
    config.write(GATEWAY_FILE, &text.replacen(from, to, 1));
}

/// Starts the load and waits until it gets answers, so a failure later is the upgrade's fault.
pub async fn start_load(gw: &Upgradable) -> Load {
    let load = Load::start(gw.addr(), Shape::default());
    assert!(
        load.wait_for_more_ok(50, SERVES_WITHIN).await,
        "the load got no answers: {}\n{}",
        load.report(),
        gw.logs()
    );
    load
}

pub fn assert_clean(report: &Report, gw: &Upgradable) {
    assert!(
        report.is_clean() && report.sent > 0,
        "the load saw failures: {report}\n{}",
        gw.logs()
    );
}

/// Asserts that a refused upgrade changed nothing: same pid serving and named in the pid file,
/// no other process on the dir, the same listening socket, no upgrade socket left behind.
pub async fn assert_untouched(gw: &Upgradable, pid: u32, inode: u64) {
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

pub fn print_figures(what: &str, runs: &[UpgradeRun], report: &Report) {
    println!("{what}: {report}");
    for (i, run) in runs.iter().enumerate() {
        println!("  upgrade {}: {run}", i + 1);
    }
}
