//! The rollout families: canary share, step, state (1 for the current one), gate breaches and
//! transitions, per route; in a fleet, whether this gateway drives, how many gateways are live,
//! and the aborts a gateway made alone while etcd was away. Registered once in the process
//! registry.

use super::state::{Phase, RolloutState, PHASES};
use crate::telemetry::Metrics;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

pub struct RolloutMetrics {
    share: GaugeVec,
    step: IntGaugeVec,
    state: IntGaugeVec,
    breaches: IntCounterVec,
    transitions: IntCounterVec,
    driver: IntGaugeVec,
    gateways: IntGaugeVec,
    local_aborts: IntCounterVec,
}

impl RolloutMetrics {
    /// Panics only on a malformed definition (a programming error the unit tests catch).
    pub fn new(metrics: &Metrics) -> RolloutMetrics {
        let opts = |n: &str, h: &str| Opts::new(n, h);
        let m = RolloutMetrics {
            share: GaugeVec::new(
                opts(
                    "dyegate_rollout_canary_share",
                    "Canary share of untagged traffic the rollout set, percent.",
                ),
                &["route"],
            )
            .unwrap_or_else(|e| panic!("rollout share: {e}")),
            step: IntGaugeVec::new(
                opts("dyegate_rollout_step", "Step the rollout is on (0 = none)."),
                &["route"],
            )
            .unwrap_or_else(|e| panic!("rollout step: {e}")),
            state: IntGaugeVec::new(
                opts(
                    "dyegate_rollout_state",
                    "1 for the rollout's current state, 0 for the others.",
                ),
                &["route", "state"],
            )
            .unwrap_or_else(|e| panic!("rollout state: {e}")),
            breaches: IntCounterVec::new(
                opts(
                    "dyegate_rollout_gate_breaches_total",
                    "Gate evaluations that found a breach, by gate.",
                ),
                &["route", "gate"],
            )
            .unwrap_or_else(|e| panic!("rollout breaches: {e}")),
            transitions: IntCounterVec::new(
                opts(
                    "dyegate_rollout_transitions_total",
                    "Moves of a rollout, by the state moved to.",
                ),
                &["route", "to"],
            )
            .unwrap_or_else(|e| panic!("rollout transitions: {e}")),
            driver: IntGaugeVec::new(
                opts(
                    "dyegate_rollout_driver",
                    "1 when this gateway drives the route's rollout (judges the fleet's window and writes its moves); a gateway on its routes file drives its own.",
                ),
                &["route"],
            )
            .unwrap_or_else(|e| panic!("rollout driver: {e}")),
            gateways: IntGaugeVec::new(
                opts(
                    "dyegate_rollout_fleet_gateways",
                    "Live gateways of the fleet whose windows the route's rollout is judged on (1 on a gateway on its routes file).",
                ),
                &["route"],
            )
            .unwrap_or_else(|e| panic!("rollout gateways: {e}")),
            local_aborts: IntCounterVec::new(
                opts(
                    "dyegate_rollout_local_aborts_total",
                    "Canary shares this gateway took to 0 alone, on its own window, while etcd was away.",
                ),
                &["route"],
            )
            .unwrap_or_else(|e| panic!("rollout local aborts: {e}")),
        };
        metrics.register(vec![
            Box::new(m.share.clone()),
            Box::new(m.step.clone()),
            Box::new(m.state.clone()),
            Box::new(m.breaches.clone()),
            Box::new(m.transitions.clone()),
            Box::new(m.driver.clone()),
            Box::new(m.gateways.clone()),
            Box::new(m.local_aborts.clone()),
        ]);
        m
    }

    /// Sets the gauges of a rollout as it is now.
    pub fn show(&self, s: &RolloutState, share: f64) {
        self.share.with_label_values(&[&s.route]).set(share);
        self.step.with_label_values(&[&s.route]).set(s.step as i64);
        for p in PHASES {
            (self.state.with_label_values(&[&s.route, p.as_str()])).set(i64::from(p == s.state));
        }
    }

    pub fn transition(&self, route: &str, to: Phase) {
        self.transitions
            .with_label_values(&[route, to.as_str()])
            .inc();
    }

    /// Whether this gateway drives `route`'s rollout, and the live gateways it is judged on.
    pub fn fleet(&self, route: &str, driving: bool, gateways: usize) {
        self.driver
            .with_label_values(&[route])
            .set(i64::from(driving));
        self.gateways
            .with_label_values(&[route])
            .set(gateways as i64);
    }

    pub fn local_abort(&self, route: &str) {
        self.local_aborts.with_label_values(&[route]).inc();
    }

    pub fn breach(&self, route: &str, gate: &str) {
        self.breaches.with_label_values(&[route, gate]).inc();
    }

    /// Drops the series of a rollout that is no longer in the file.
    pub fn forget(&self, route: &str) {
        let _ = self.share.remove_label_values(&[route]);
        let _ = self.step.remove_label_values(&[route]);
        let _ = self.driver.remove_label_values(&[route]);
        let _ = self.gateways.remove_label_values(&[route]);
        for p in PHASES {
            let _ = self.state.remove_label_values(&[route, p.as_str()]);
        }
    }
}
