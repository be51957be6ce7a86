//! Shared by the fleet rollout tests (tests/fleet/rollouts.rs) and benches/rollout/fleet.rs: a
//! real etcd, a stable and a canary upstream, and N gateways (`gw1`, `gw2`, ...) whose table —
//! the `shop` route of [`crate::rollout::routes`] with a rollout — comes from etcd, with a short
//! lease so that a lost driver is replaced quickly.

use std::time::Duration;

use serde_json::Value;

use super::fleet::{revision_printed, PREFIX};
use crate::rollout::routes;
use crate::upstream::{Fault, FaultyUpstream};
use crate::wait::poll_until;
use crate::{Dyegate, EtcdServer, GatewayConfig};

/// `source.etcd.lease_ttl_ms` of the fleet's gateways.
pub const LEASE_TTL: Duration = Duration::from_secs(3);

/// `source:` of a gateway named `id` on `etcd`.
pub fn source_yaml(etcd: &EtcdServer, id: &str) -> String {
    format!(
        "source: {{ etcd: {{ endpoints: [\"{}\"], prefix: \"{PREFIX}\", dial_timeout_ms: 500, gateway_id: {id}, lease_ttl_ms: {} }} }}\n",
        etcd.endpoint(),
        LEASE_TTL.as_millis()
    )
}

/// `dyegate push` of `text` from `config`'s dir; the revision it printed. Panics when it fails.
pub fn push(config: &GatewayConfig, text: &str) -> u64 {
    let file = config.write("push.yaml", text);
    let out = config.cli(&["push", file.to_str().expect("utf-8 path")]);
    match (out.code, revision_printed(&out)) {
        (Some(0), Some(r)) => r,
        _ => panic!("push failed:\n{out}"),
    }
}

pub struct RolloutFleet {
    pub etcd: EtcdServer,
    pub stable: FaultyUpstream,
    pub canary: FaultyUpstream,
    /// `gw1`, `gw2`, ... in order; `None` once killed.
    pub gateways: Vec<Option<Dyegate>>,
    /// The table pushed (routes.yaml text).
    pub table: String,
}

impl RolloutFleet {
    /// Pushes the `shop` route with `rollout` fields (see [`crate::rollout::routes`]) and starts
    /// `n` gateways on it.
    pub fn start(n: usize, rollout: &str) -> RolloutFleet {
        Self::start_with(n, rollout, |_, c| c)
    }

    /// [`start`](Self::start), with each gateway's config (index from 0) changed by `edit`.
    pub fn start_with(
        n: usize,
        rollout: &str,
        edit: impl Fn(usize, GatewayConfig) -> GatewayConfig,
    ) -> RolloutFleet {
        let etcd = EtcdServer::start();
        let stable = FaultyUpstream::start("stable", Fault::None);
        let canary = FaultyUpstream::start("canary", Fault::None);
        let table = routes(&stable, &canary, rollout, "");
        let configs: Vec<GatewayConfig> = (0..n)
            .map(|i| {
                let c = GatewayConfig::new(&table)
                    .with_source(&source_yaml(&etcd, &format!("gw{}", i + 1)));
                edit(i, c)
            })
            .collect();
        push(&configs[0], &table);
        let gateways = configs.into_iter().map(|c| Some(c.start())).collect();
        RolloutFleet {
            etcd,
            stable,
            canary,
            gateways,
            table,
        }
    }

    /// Gateway `i` (from 0), running.
    pub fn gw(&self, i: usize) -> &Dyegate {
        self.gateways[i].as_ref().expect("a running gateway")
    }

    /// The running gateways, with their index.
    pub fn running(&self) -> impl Iterator<Item = (usize, &Dyegate)> {
        (self.gateways.iter().enumerate()).filter_map(|(i, g)| Some((i, g.as_ref()?)))
    }

    /// Kills gateway `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(gw) = self.gateways[i].take() {
            gw.signal(libc::SIGKILL);
            drop(gw);
        }
    }

    /// Kills gateway `i` (SIGKILL) and keeps its dir, to start it again with [`GatewayConfig::start`].
    pub fn kill_keeping(&mut self, i: usize) -> GatewayConfig {
        let gw = self.gateways[i].take().expect("a running gateway");
        gw.signal(libc::SIGKILL);
        gw.stop()
    }

    /// Starts gateway `i` again on `config` (from [`kill_keeping`](Self::kill_keeping)).
    pub fn restart(&mut self, i: usize, config: GatewayConfig) {
        self.gateways[i] = Some(config.start());
    }

    /// The index of the gateway named `id` (`gw2` is 1).
    pub fn index_of(id: &str) -> usize {
        id.trim_start_matches("gw").parse::<usize>().expect("gwN") - 1
    }

    /// Polls `/rollouts/shop` on every running gateway until `cond` holds on each; returns the
    /// answers, in gateway order. Panics after `timeout` with the last answers and the logs.
    pub async fn wait_all(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let all = || async {
            let mut out = Vec::new();
            for (_, gw) in self.running() {
                out.push(gw.admin_get("/rollouts/shop").await);
            }
            out
        };
        match poll_until(timeout, all, |rs| rs.iter().all(&cond)).await {
            Ok(rs) => rs,
            Err(rs) => {
                let logs: Vec<String> = self.running().map(|(_, g)| g.logs()).collect();
                panic!(
                    "no {what} within {timeout:?}; last: {rs:#?}\n{}",
                    logs.join("\n")
                )
            }
        }
    }

    /// The gateway that drives, once one does (as gateway `i` sees it).
    pub async fn driver(&self, i: usize) -> String {
        let r = poll_until(
            Duration::from_secs(20),
            || self.gw(i).admin_get("/rollouts/shop"),
            |r| r["fleet"]["driver"].is_string(),
        )
        .await
        .unwrap_or_else(|r| panic!("no driver: {r:#}\n{}", self.gw(i).logs()));
        r["fleet"]["driver"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The versions a gateway made for the rollout (trigger `rollout`), as (version, step).
    pub async fn rollout_versions(&self, i: usize) -> Vec<(String, u64)> {
        let v = self.gw(i).admin_get("/versions").await;
        (v["versions"].as_array().into_iter().flatten())
            .filter(|v| v["trigger"] == "rollout")
            .map(|v| (v["version"].to_string(), v["step"].as_u64().unwrap_or(99)))
            .collect()
    }

    /// `version` and `local` of each running gateway's `/status`.
    pub async fn versions(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (_, gw) in self.running() {
            let s = gw.status().await;
            out.push(serde_json::json!({ "version": s["version"], "local": s["local"] }));
        }
        out
    }
}
