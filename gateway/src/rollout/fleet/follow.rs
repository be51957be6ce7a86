//! The controller of a gateway that follows etcd: it follows the fleet's rollouts rather than
//! running them. The plans come from each table, the states from etcd (read by the fleet
//! service every round), and the one move it makes itself is a gateway's own abort while etcd
//! is away — a local change, as a rollback on such a gateway is.

use super::super::controller::Controller;
use super::super::controller_hooks::{new_moves, overlay_answer};
use super::super::error::RolloutError;
use super::super::judge::Evaluation;
use super::super::plan::Plan;
use super::super::state::{MovedBy, RolloutState};
use super::super::steps::{Decision, Steps};
use crate::mirror::tally::ShadowCounts;
use crate::reload::Caller;
use crate::routing::Overrides;
use std::collections::BTreeMap;

/// A rollout of `plan` as shown before the fleet's driver has written its state.
fn unwritten(plan: &Plan) -> RolloutState {
    RolloutState::new(
        &plan.route,
        plan.canary_group(),
        &plan.fingerprint,
        MovedBy::Etcd,
        0,
    )
}

/// What tells one state of a rollout from the next (a move adds to its history).
fn moved(a: &RolloutState, b: &RolloutState) -> bool {
    (a.state, a.step, a.history.len(), &a.since) != (b.state, b.step, b.history.len(), &b.since)
}

/// A move of the fleet's rollout seen here (the driver, or a control on any gateway, wrote it).
fn log_followed(s: &RolloutState) {
    let reason = (s.last_reason())
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    log::info!(
        "rollout {}: {} at step {} (canary {}%), moved by {} (fleet){reason}",
        s.route,
        s.state.as_str(),
        s.step,
        s.share.unwrap_or(0),
        s.moved_by
    );
}

impl Controller {
    /// The plans of a table this gateway applies: rollouts that left the table end here (the
    /// fleet's keys of a route a push removed are removed by the push), new ones show as
    /// pending until the driver writes their state.
    pub(in crate::rollout) fn follow_plans(&self, plans: &BTreeMap<String, Plan>) {
        let mut inner = self.lock();
        self.forget_gone(&mut inner, plans);
        for (route, plan) in plans {
            let fits = (inner.states.get(route)).is_some_and(|s| s.fingerprint == plan.fingerprint);
            if !fits {
                inner.states.insert(route.clone(), unwritten(plan));
            }
        }
        self.expect_hooks(&inner.plans, plans);
        inner.plans = plans.clone();
        let routes: Vec<String> = inner.states.keys().cloned().collect();
        for r in &routes {
            self.show(&inner, r, false);
        }
    }

    /// The states etcd holds (those of the running plans count) and the fleet's evaluation of
    /// each, as read in one round of the fleet service.
    pub fn follow(
        &self,
        states: &BTreeMap<String, RolloutState>,
        evaluations: BTreeMap<String, Evaluation>,
    ) {
        let mut inner = self.lock();
        let plans = inner.plans.clone();
        for (route, plan) in &plans {
            let mut now = match states.get(route) {
                Some(s) if s.fingerprint == plan.fingerprint => s.clone(),
                _ => unwritten(plan),
            };
            let before = inner.states.get(route);
            let known = before.is_some();
            let changed = before.is_none_or(|b| moved(b, &now));
            now.last_evaluation = match evaluations.get(route) {
                Some(e) => Some(e.clone()),
                None => now
                    .last_evaluation
                    .or_else(|| before.and_then(|b| b.last_evaluation.clone())),
            };
            if let (true, Some(b)) = (changed, before) {
                log_followed(&now);
                now.unannounced = new_moves(b, &now);
            }
            overlay_answer(&inner.answers, route, &mut now);
            inner.states.insert(route.clone(), now);
            self.show(&inner, route, changed && known);
        }
        inner.answers.retain(|route, a| {
            (states.get(route))
                .is_some_and(|s| s.confirmation.as_ref().is_some_and(|c| c.step == a.step))
        });
        self.announce(&mut inner);
    }

    /// A state this gateway just wrote (a control made here), shown before the next round
    /// reads it back.
    pub fn follow_one(&self, state: RolloutState) {
        let mut inner = self.lock();
        let route = state.route.clone();
        let fits = (inner.plans.get(&route)).is_some_and(|p| p.fingerprint == state.fingerprint);
        if !fits {
            return;
        }
        let last = inner
            .states
            .get(&route)
            .and_then(|s| s.last_evaluation.clone());
        let mut state = state;
        state.last_evaluation = state.last_evaluation.or(last);
        if let Some(b) = inner.states.get(&route) {
            state.unannounced = new_moves(b, &state);
        }
        inner.states.insert(route.clone(), state);
        self.show(&inner, &route, true);
        self.announce(&mut inner);
    }

    /// This gateway's tally of the canary's answers to its copies in `plan`'s shadow stage
    /// (state `s`) at second `now`, with the seconds it covers (the stage so far, as the
    /// stage's judge reads them); `None` outside the stage.
    pub fn own_shadow(
        &self,
        plan: &Plan,
        s: &RolloutState,
        now: u64,
    ) -> Option<(ShadowCounts, (u64, u64))> {
        if !s.shadow || plan.shadow.is_none() {
            return None;
        }
        let (from, to) = super::super::shadow::span(s.step_started_ms, now);
        let tally = self.metrics.shadow_tally();
        let counts = tally.counts(&plan.route, plan.canary_group(), from, to);
        Some((counts, (from, to)))
    }

    /// Takes `route`'s canary to 0 on this gateway alone (its own window breached a gate while
    /// etcd was away): a local change (`N.K`, divergent) through the one attempt, audited
    /// with `reason`. The fleet's state is not touched: it is reported once etcd answers.
    pub fn abort_alone(
        &self,
        route: &str,
        reason: &str,
        steps: &dyn Steps,
    ) -> Result<(), RolloutError> {
        let plan = (self.lock().plans.get(route).cloned())
            .ok_or_else(|| RolloutError::NoRollout(route.to_string()))?;
        let gateway = self.fleet().map(|f| f.gateway_id.clone());
        let mut decide = |running: &Overrides| {
            let mut overrides = running.clone();
            overrides.set_over(route, plan.weights(0), &plan.base);
            let note = serde_json::json!({
                "route": route,
                "step": 0,
                "canary_share": 0,
                "state": "failed",
                "by": MovedBy::Local.as_str(),
                "reason": reason,
                "gateway": gateway,
            });
            Ok(Decision::Set(overrides, note))
        };
        let mut applied = || {};
        steps.commit_step(route, 0, Caller::default(), &mut decide, &mut applied)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::plan::Plan;
    use super::super::super::state::Phase;
    use super::super::FleetView;
    use super::*;
    use crate::reload::Overlay;
    use crate::routing::RouteTable;
    use crate::telemetry::labels::TriggerLabel;

    fn plan(fingerprint: &str) -> Plan {
        Plan {
            fingerprint: fingerprint.into(),
            ..crate::rollout::plan::test_plan()
        }
    }

    #[test]
    fn a_fleet_gateway_sets_nothing_over_its_tables_and_shows_the_states_of_its_plans() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = Controller::in_fleet(
            dir.path(),
            crate::telemetry::Metrics::new(),
            FleetView::new("gw1"),
        );
        let plans: BTreeMap<String, Plan> = [("shop".to_string(), plan("p1"))].into();
        let (overrides, note) = c.over(&plans, &RouteTable::default(), TriggerLabel::Etcd);
        assert!(overrides.is_empty() && note.is_none());
        assert_eq!(c.states()["shop"].state, Phase::Pending);
        // A state of another plan is not this table's rollout; one of its plan is shown.
        let mut other = RolloutState::new("shop", "canary", "p0", MovedBy::Etcd, 0);
        other.state = Phase::Succeeded;
        c.follow(&[("shop".to_string(), other)].into(), BTreeMap::new());
        assert_eq!(c.states()["shop"].state, Phase::Pending);
        let mut s = RolloutState::new("shop", "canary", "p1", MovedBy::Etcd, 0);
        s.moved(Phase::Progressing, MovedBy::Rollout, None);
        s.step = 1;
        c.follow(&[("shop".to_string(), s)].into(), BTreeMap::new());
        assert_eq!(
            (c.states()["shop"].state, c.states()["shop"].step),
            (Phase::Progressing, 1)
        );
        // Gone from the table: gone here.
        c.over(&BTreeMap::new(), &RouteTable::default(), TriggerLabel::Etcd);
        assert!(c.states().is_empty());
        // Nothing is kept in state_dir: the states live in etcd.
        assert!(!dir.path().join("rollouts.json").exists());
    }
}
