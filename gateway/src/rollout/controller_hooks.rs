//! What the controller gives the hooks service and takes from it: the moves made, queued for
//! the events hooks; the confirmations due and their answers; the Prometheus gates' readings
//! judged for a step. Decided under the controller's lock, never waiting on a call.

use super::controller::{Controller, Inner};
use super::hooks::confirm::Answer;
use super::hooks::event;
use super::hooks::metrics::{Hook, HookMetrics};
use super::hooks::outbox::Outbox;
use super::plan::Plan;
use super::prometheus::readings::Readings;
use super::prometheus::verdict::{verdicts, PromVerdict};
use super::state::{Phase, RolloutState};
use std::sync::Arc;

impl Controller {
    /// Whether this gateway calls the hooks and queries Prometheus: on its own routes file
    /// always, in a fleet only while it drives.
    pub fn drives(&self) -> bool {
        self.fleet().is_none_or(|f| f.driving())
    }

    pub fn outbox(&self) -> Arc<Outbox> {
        self.outbox.clone()
    }

    pub fn readings(&self) -> Arc<Readings> {
        self.readings.clone()
    }

    pub fn hook_metrics(&self) -> &HookMetrics {
        &self.hook_metrics
    }

    /// The Prometheus gates of `plan` judged for the step that began at `step_started_ms`.
    pub(super) fn prometheus_verdicts(
        &self,
        plan: &Plan,
        step_started_ms: u64,
    ) -> Vec<PromVerdict> {
        verdicts(
            &plan.gates.prometheus,
            |gate| self.readings.get(&plan.route, gate),
            step_started_ms,
        )
    }

    /// The rollouts whose confirmation is to be asked now: (route, the step it would go to).
    pub fn confirmations_due(&self, now_ms: u64) -> Vec<(String, usize)> {
        let inner = self.lock();
        (inner.states.iter())
            .filter(|(_, s)| s.state == Phase::AwaitingConfirmation)
            .filter_map(|(route, s)| {
                let plan = inner.plans.get(route)?;
                plan.hooks.confirm_step.as_ref()?;
                let c = s.confirmation.as_ref()?;
                c.due(plan.step_ms, now_ms).then(|| (route.clone(), c.step))
            })
            .collect()
    }

    /// Records what `confirm_step` answered for `route`'s `step` (asked at `asked_ms`); a 2xx
    /// lets the next judgement promote. An answer for another step (a control came first) is
    /// dropped.
    pub fn confirmation_answered(
        &self,
        route: &str,
        step: usize,
        answer: &Answer,
        asked_ms: u64,
        asked: String,
    ) {
        let mut inner = self.lock();
        let Some(s) = inner.states.get_mut(route) else {
            return;
        };
        let Some(c) = s.confirmation.as_mut().filter(|c| c.step == step) else {
            return;
        };
        if s.state != Phase::AwaitingConfirmation {
            return;
        }
        c.record(answer, asked_ms, asked);
        let line = format!(
            "rollout {route}: confirm_step for step {step}: {}",
            c.answer.as_deref().unwrap_or("-")
        );
        match c.confirmed {
            true => log::info!("{line}: the step goes"),
            false => log::info!("{line}: the step waits (asked {} times)", c.asks),
        }
        self.save(&mut inner);
    }

    /// Queues the moves made since the last call for the events hooks of their plans (and
    /// forgets them where the plan has none, or where another gateway drives).
    pub(super) fn announce(&self, inner: &mut Inner) {
        let drives = self.drives();
        let Inner { plans, states, .. } = inner;
        for (route, s) in states.iter_mut() {
            if s.unannounced.is_empty() {
                continue;
            }
            let moves = std::mem::take(&mut s.unannounced);
            let Some(hook) = plans.get(route).and_then(|p| p.hooks.events.as_ref()) else {
                continue;
            };
            if !drives {
                continue;
            }
            for (before, now) in moves {
                let kind = event::kind(before.as_ref(), &now);
                let data =
                    event::move_data(route, &s.canary, &s.fingerprint, before.as_ref(), &now);
                self.queue_event(route, hook, kind, &now.at, data);
            }
        }
    }

    /// Queues a breach the gates found, before the move it causes.
    pub(super) fn announce_breach(&self, plan: &Plan, s: &RolloutState, gate: &str, why: &str) {
        let Some(hook) = plan.hooks.events.as_ref().filter(|_| self.drives()) else {
            return;
        };
        let data = event::breach(&plan.route, &s.canary, &s.fingerprint, gate, why, s.step);
        let at = crate::stamp::now_rfc3339();
        self.queue_event(&plan.route, hook, "gate_breached", &at, data);
    }

    fn queue_event(
        &self,
        route: &str,
        hook: &super::hooks::EventsHook,
        kind: &str,
        at: &str,
        data: serde_json::Value,
    ) {
        self.outbox
            .push(route, &hook.url, hook.secret_file.as_ref(), |seq| {
                let envelope = event::envelope(route, seq, kind, at, data);
                serde_json::to_vec(&envelope).unwrap_or_default()
            });
    }

    /// Makes the hook series of the plans' hooks at 0, and drops those of hooks gone.
    pub(super) fn expect_hooks(
        &self,
        before: &std::collections::BTreeMap<String, Plan>,
        after: &std::collections::BTreeMap<String, Plan>,
    ) {
        let has = |plans: &std::collections::BTreeMap<String, Plan>, route: &str, hook: Hook| {
            plans.get(route).is_some_and(|p| match hook {
                Hook::ConfirmStep => p.hooks.confirm_step.is_some(),
                Hook::Events => p.hooks.events.is_some(),
            })
        };
        for hook in [Hook::ConfirmStep, Hook::Events] {
            for route in before.keys() {
                if has(before, route, hook) && !has(after, route, hook) {
                    self.hook_metrics.forget(route, hook);
                }
            }
            for route in after.keys() {
                if has(after, route, hook) {
                    self.hook_metrics.expect(route, hook);
                }
            }
        }
    }
}
