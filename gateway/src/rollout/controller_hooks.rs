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
    pub(in crate::rollout) fn prometheus_verdicts(
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
        let fleet = self.fleet().is_some();
        let Inner {
            states, answers, ..
        } = &mut *inner;
        let Some(s) = states.get_mut(route) else {
            return;
        };
        let Some(c) = s.confirmation.as_mut().filter(|c| c.step == step) else {
            return;
        };
        if s.state != Phase::AwaitingConfirmation {
            return;
        }
        c.record(answer, asked_ms, asked);
        if fleet {
            answers.insert(route.to_string(), c.clone());
        }
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

    /// In a fleet: the state `s` of `route`'s rollout as etcd holds it, with this driver's
    /// answer of its confirmation (when it is of the step asked).
    pub fn with_answer(&self, route: &str, s: &mut RolloutState) {
        let inner = self.lock();
        overlay_answer(&inner.answers, route, s);
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

/// `s` with the answer kept for `route`, when `s` awaits the confirmation of that step.
pub(super) fn overlay_answer(
    answers: &std::collections::BTreeMap<String, super::hooks::confirm::Confirmation>,
    route: &str,
    s: &mut RolloutState,
) {
    let Some(a) = answers.get(route) else { return };
    let asked = s.confirmation.as_ref().map(|c| c.step);
    if s.state == Phase::AwaitingConfirmation && asked == Some(a.step) {
        s.confirmation = Some(a.clone());
    }
}

/// The moves `now` has that `before` had not (a fleet's state read again from etcd), each with
/// the move before it.
pub(super) fn new_moves(
    before: &RolloutState,
    now: &RolloutState,
) -> Vec<(Option<super::state::Move>, super::state::Move)> {
    let same = |a: &super::state::Move, b: &super::state::Move| {
        (a.at.as_str(), a.state, a.step) == (b.at.as_str(), b.state, b.step)
    };
    let from = match before.history.last() {
        Some(last) => match now.history.iter().rposition(|m| same(m, last)) {
            Some(i) => i + 1,
            // Not found (another plan, or more moves than the history keeps): the last one.
            None => now.history.len().saturating_sub(1),
        },
        None => 0,
    };
    (from..now.history.len())
        .map(|i| {
            let prev = i.checked_sub(1).and_then(|j| now.history.get(j)).cloned();
            (prev, now.history[i].clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::hooks::confirm::{Answer, Confirmation};
    use crate::rollout::state::MovedBy;

    fn state() -> RolloutState {
        RolloutState::new("shop", "canary", "p", MovedBy::Etcd, 0)
    }

    #[test]
    fn the_moves_a_fleet_s_state_gained_are_the_ones_announced() {
        let before = state();
        let mut now = before.clone();
        now.step = 1;
        now.moved(Phase::Progressing, MovedBy::Rollout, None);
        now.moved(Phase::AwaitingConfirmation, MovedBy::Rollout, None);
        let moves = new_moves(&before, &now);
        let states: Vec<(Option<Phase>, Phase)> = (moves.iter())
            .map(|(b, m)| (b.as_ref().map(|b| b.state), m.state))
            .collect();
        assert_eq!(
            states,
            vec![
                (Some(Phase::Pending), Phase::Progressing),
                (Some(Phase::Progressing), Phase::AwaitingConfirmation)
            ]
        );
        assert!(new_moves(&now, &now).is_empty());
    }

    #[test]
    fn the_driver_s_answer_joins_the_state_of_the_step_it_was_asked_for() {
        let mut s = state();
        s.step = 1;
        s.moved(Phase::AwaitingConfirmation, MovedBy::Rollout, None);
        let mut answer = Confirmation::new(2);
        answer.record(&Answer::Status(200), 5, "t".into());
        let answers = [("shop".to_string(), answer)].into_iter().collect();
        overlay_answer(&answers, "shop", &mut s);
        assert!(s.confirmation.as_ref().is_some_and(|c| c.confirmed));
        // Another step's answer does not count.
        let mut later = state();
        later.step = 2;
        later.moved(Phase::AwaitingConfirmation, MovedBy::Rollout, None);
        overlay_answer(&answers, "shop", &mut later);
        assert!(later
            .confirmation
            .as_ref()
            .is_some_and(|c| !c.confirmed && c.step == 3));
    }
}
