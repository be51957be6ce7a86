//! Shared by the fleet tests: a real etcd, two upstreams (`blue`, `green`), gateways whose
//! table comes from etcd under `/dyegate/test/`, and `dyegate push` of a table sending
//! everything to one group.

use std::time::{Duration, Instant};

use crate::wait::poll_until;
use crate::{
    etcd_source_yaml, upstream_groups, CliOutput, Dyegate, EtcdServer, GatewayConfig, Req, Upstream,
};
use http::StatusCode;

pub const PREFIX: &str = "/dyegate/test/";
/// Generous for a debug build on a loaded machine; the 1 s promise is asserted separately.
pub const SETTLE: Duration = Duration::from_secs(10);

pub struct Fleet {
    pub etcd: EtcdServer,
    pub blue: Upstream,
    pub green: Upstream,
}

impl Fleet {
    #[allow(clippy::new_without_default)] // starts processes: nothing to default to
    pub fn new() -> Fleet {
        Fleet {
            etcd: EtcdServer::start(),
            blue: Upstream::start("blue"),
            green: Upstream::start("green"),
        }
    }

    /// routes.yaml sending everything to `group`.
    pub fn routes_to(&self, group: &str) -> String {
        format!(
            "{}routes:\n  - name: all\n    split: [{{ upstream: {group}, weight: 1 }}]\n",
            upstream_groups(&[("blue", &self.blue), ("green", &self.green)])
        )
    }

    /// A gateway config (not started) on this etcd; its routes.yaml sends to `group`.
    pub fn config(&self, group: &str) -> GatewayConfig {
        GatewayConfig::new(&self.routes_to(group))
            .with_source(&etcd_source_yaml(&self.etcd, PREFIX))
    }

    /// `dyegate push` of `text` from `config`'s dir; the revision it printed, or the output.
    pub fn push_text(&self, config: &GatewayConfig, text: &str) -> Result<u64, CliOutput> {
        let file = config.write("push.yaml", text);
        let out = config.cli(&["push", file.to_str().expect("utf-8 path")]);
        match (out.code, revision_printed(&out)) {
            (Some(0), Some(r)) => Ok(r),
            _ => Err(out),
        }
    }

    /// `dyegate push` of a table sending everything to `group`; panics when it fails.
    pub fn push(&self, config: &GatewayConfig, group: &str) -> u64 {
        self.push_text(config, &self.routes_to(group))
            .unwrap_or_else(|out| panic!("push failed:\n{out}"))
    }

    /// The generation `current` names (the first word of its value: an `allow-empty` mark may
    /// follow).
    pub fn generation(&self) -> String {
        let current = self.etcd.get(&format!("{PREFIX}current"));
        let current = current.expect("a current table");
        current.split_whitespace().next().unwrap_or("").to_string()
    }
}

/// Two gateways on one fleet: the table pushed first sends everything to `blue` (revision
/// `r1`), then a push moves both to `green` (`r2`); returned once both answer from green.
pub async fn two_gateways_blue_then_green() -> (Fleet, Dyegate, Dyegate, u64, u64) {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let r1 = fleet.push(&config, "blue");
    let a = config.start();
    let b = fleet.config("blue").start();
    let r2 = fleet.push(a.config(), "green");
    wait_for_upstream(&a, "green", SETTLE).await;
    wait_for_upstream(&b, "green", SETTLE).await;
    (fleet, a, b, r1, r2)
}

/// The `revision N` a push or fleet rollback printed.
pub fn revision_printed(out: &CliOutput) -> Option<u64> {
    out.stdout.lines().rev().find_map(|l| {
        l.rsplit_once("revision ")
            .and_then(|(_, r)| r.trim().parse().ok())
    })
}

/// The upstream that answers `GET /` now.
pub async fn answered_by(gw: &Dyegate) -> String {
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    resp.upstream().expect("x-upstream").to_owned()
}

/// Polls `GET /` until `group` answers; how long that took. Panics after `timeout`.
pub async fn wait_for_upstream(gw: &Dyegate, group: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    if poll_until(timeout, || answered_by(gw), |g| g == group)
        .await
        .is_err()
    {
        panic!(
            "{group} did not answer within {timeout:?}; status {:#}\n{}",
            gw.status().await,
            gw.logs()
        );
    }
    start.elapsed()
}

/// `n` puts to `key`, alternating two values; the last revision.
pub async fn storm(endpoint: &str, key: &str, values: [&str; 2], n: usize) -> u64 {
    let mut client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("connecting to etcd");
    let mut last = 0;
    for i in 0..n {
        let put = client.put(key, values[i % 2], None).await.expect("put");
        last = put.header().map_or(0, |h| h.revision()) as u64;
    }
    last
}
