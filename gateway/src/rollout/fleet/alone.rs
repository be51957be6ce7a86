//! A gateway of a fleet alone: etcd is out of reach, so nothing promotes, and it judges its own
//! window of every judged rollout (`min_requests` shared out among the gateways it last saw);
//! on a breach it takes its canary share to 0 by itself — a local change, reported to the
//! fleet in its window once etcd answers (see [`moves::breached_alone`]).

use super::super::state::{now_ms, RolloutState};
use super::moves;
use super::record::LocalAbort;
use super::service::{lock, FleetService};
use log::warn;
use std::collections::BTreeMap;

impl FleetService {
    /// etcd is out of reach: this gateway judges its own window of every judged rollout, and
    /// takes the canary to 0 on its own on a breach (`on_failure: rollback`).
    pub(super) async fn alone(&self) {
        let gateways = {
            let mut seen = self.view.seen();
            seen.connected = false;
            seen.driver = None;
            seen.driving = false;
            seen.gateways.len().max(1)
        };
        let plans = self.controller.plans();
        let states = self.controller.states();
        let now = now_ms() / 1000;
        for (route, plan) in &plans {
            let Some(s) = states.get(route) else { continue };
            let done = (self.view.seen().local_aborts.get(route))
                .is_some_and(|a| a.step_started_ms == s.step_started_ms);
            if done {
                continue;
            }
            let own = self.controller.own_window(plan, s.step_started_ms, now);
            let Some(e) = moves::breached_alone(plan, s, &own, gateways) else {
                continue;
            };
            let reason = e.breach().map(|v| e.describe(v)).unwrap_or_default();
            if !moves::aborts_alone(plan) {
                let first = lock(&self.held_alone).insert((route.clone(), s.step_started_ms));
                if first {
                    warn!("rollout {route}: etcd is out of reach and this gateway's own window breached ({reason}); on_failure is pause: the step is held (no promotion without etcd)");
                }
                continue;
            }
            self.abort_alone(route, s, reason).await;
        }
        self.controller.follow(&states, BTreeMap::new());
    }

    async fn abort_alone(&self, route: &str, s: &RolloutState, reason: String) {
        let (controller, steps, r, why) = (
            self.controller.clone(),
            self.steps.clone(),
            route.to_string(),
            reason.clone(),
        );
        let done = tokio::task::spawn_blocking(move || {
            let result = controller.abort_alone(&r, &why, &*steps);
            (result, steps.version())
        })
        .await;
        match done {
            Ok((Ok(()), version)) => {
                warn!("rollout {route}: etcd is out of reach and this gateway's own window breached ({reason}): canary share 0 on this gateway alone, version {version} (divergent until the fleet's next revision); reported to the fleet once etcd answers");
                self.controller.gauges.local_abort(route);
                let abort = LocalAbort {
                    at: crate::stamp::now_rfc3339(),
                    step_started_ms: s.step_started_ms,
                    reason,
                    version: version.to_string(),
                };
                self.view
                    .seen()
                    .local_aborts
                    .insert(route.to_string(), abort);
            }
            Ok((Err(e), _)) => warn!("rollout {route}: taking the canary to 0 alone failed: {e}"),
            Err(e) => warn!("rollout {route}: taking the canary to 0 alone failed: {e}"),
        }
    }
}
