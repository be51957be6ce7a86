//! `dyegate_rollout_hook_deliveries_total{route,hook,outcome}`: every call of a hook, by what
//! came of it; the series of a route's hooks exist at 0 from the moment its plan is known.

use crate::telemetry::Metrics;
use prometheus::{IntCounterVec, Opts};

/// A hook, as the label has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    ConfirmStep,
    Events,
}

/// What came of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// confirm_step: a 2xx.
    Confirmed,
    /// confirm_step: another status (the step waits).
    Refused,
    /// events: a 2xx.
    Delivered,
    /// events: a 4xx but 408 and 429 (the receiver will never take it): not sent again.
    Rejected,
    /// events: the queue was full, the oldest waiting event was dropped.
    Dropped,
    /// No HTTP answer (refused, reset, timed out) or, for events, a 5xx, 408 or 429: asked
    /// again (confirm_step) or sent again after a backoff (events).
    Failed,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::ConfirmStep => "confirm_step",
            Hook::Events => "events",
        }
    }

    pub fn outcomes(self) -> &'static [Outcome] {
        match self {
            Hook::ConfirmStep => &[Outcome::Confirmed, Outcome::Refused, Outcome::Failed],
            Hook::Events => &[
                Outcome::Delivered,
                Outcome::Failed,
                Outcome::Rejected,
                Outcome::Dropped,
            ],
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::Refused => "refused",
            Outcome::Delivered => "delivered",
            Outcome::Rejected => "rejected",
            Outcome::Dropped => "dropped",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Clone)]
pub struct HookMetrics {
    deliveries: IntCounterVec,
}

impl HookMetrics {
    /// Panics only on a malformed definition (a programming error the unit tests catch).
    pub fn new(metrics: &Metrics) -> HookMetrics {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "dyegate_rollout_hook_deliveries_total",
                "Calls of a rollout's hooks (confirm_step, events), by outcome: confirmed, refused, failed (confirm_step); delivered, failed (sent again), rejected, dropped (events).",
            ),
            &["route", "hook", "outcome"],
        )
        .unwrap_or_else(|e| panic!("hook deliveries: {e}"));
        metrics.register(vec![Box::new(deliveries.clone())]);
        HookMetrics { deliveries }
    }

    /// Makes the series of `route`'s `hook` at 0.
    pub fn expect(&self, route: &str, hook: Hook) {
        for o in hook.outcomes() {
            let _ = self
                .deliveries
                .with_label_values(&[route, hook.as_str(), o.as_str()]);
        }
    }

    pub fn count(&self, route: &str, hook: Hook, outcome: Outcome) {
        self.deliveries
            .with_label_values(&[route, hook.as_str(), outcome.as_str()])
            .inc();
    }

    /// Drops the series of a route's hook no longer in the table.
    pub fn forget(&self, route: &str, hook: Hook) {
        for o in hook.outcomes() {
            let _ = (self.deliveries).remove_label_values(&[route, hook.as_str(), o.as_str()]);
        }
    }
}
