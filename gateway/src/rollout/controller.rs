//! The controller: the plans of the routing table, the rollouts' states, and the moves. It is
//! the reloader's [`Overlay`]: it sets its steps' weights over every table (a reload that
//! leaves a route's `split` and `rollout` unchanged keeps its step; an edit of them starts the
//! rollout again from the file's weights), judges the gates once a second
//! ([`Controller::tick`], from the background service), and commits every step and abort
//! through the reloader's one attempt, reached through the [`Steps`] handed to each call.
//!
//! On a gateway that follows etcd the rollouts are the fleet's ([`super::fleet`]): their
//! states live in etcd, one driver judges the fleet's window and writes the moves there, and
//! every gateway applies a move's weights as one more etcd revision. The controller then only
//! follows: it learns the plans from each table ([`Overlay::over`] sets nothing), mirrors the
//! states the fleet service reads ([`Controller::follow`]) for the status and the metrics, and
//! commits a gateway's own abort while etcd is away ([`Controller::abort_alone`]).
//!
//! Lock order: the commit lock, then the controller's. The controller never holds its own lock
//! while it asks for a commit; the moves are decided and written under the commit lock (in the
//! decision and the record the attempt runs), so the table and the state change together for
//! every other trigger.

use super::clock::{Clock, SystemClock};
use super::error::RolloutError;
use super::fleet::FleetView;
use super::hooks::metrics::HookMetrics;
use super::hooks::outbox::Outbox;
use super::judge::{judge, Evaluation};
use super::machine::{next, Next};
use super::metrics::RolloutMetrics;
use super::plan::Plan;
use super::prometheus::readings::Readings;
use super::state::{MovedBy, Phase, RolloutState, Store};
use super::steps::{Decision, Steps};
use crate::reload::{Caller, Overlay};
use crate::routing::{Overrides, RouteTable};
use crate::telemetry::labels::TriggerLabel;
use crate::telemetry::window::Window;
use crate::telemetry::Metrics;
use log::{error, info, warn};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub(super) struct Inner {
    pub plans: BTreeMap<String, Plan>,
    pub states: BTreeMap<String, RolloutState>,
    /// Bumped by every move: a move decided on an older generation is dropped.
    pub generation: u64,
    /// In a fleet, the driver's answers of `confirm_step` by route (the state in etcd keeps
    /// the confirmation asked; the answer lives on the driver that asked).
    pub answers: BTreeMap<String, super::hooks::confirm::Confirmation>,
}

pub struct Controller {
    pub(super) inner: Mutex<Inner>,
    store: Store,
    pub(super) metrics: Arc<Metrics>,
    pub(super) gauges: RolloutMetrics,
    pub(super) clock: Arc<dyn Clock>,
    /// `Some` on a gateway that follows etcd: the rollouts are the fleet's.
    fleet: Option<Arc<FleetView>>,
    /// The events waiting for the events hooks.
    pub(super) outbox: Arc<Outbox>,
    /// The Prometheus gates' last readings.
    pub(super) readings: Arc<Readings>,
    pub(super) hook_metrics: HookMetrics,
    /// The last 15 minutes of each rollout, for the live view ([`super::series`]).
    pub(super) series: Mutex<BTreeMap<String, super::series::Series>>,
}

impl Controller {
    /// Starts from the states kept in `state_dir`, on the wall clock.
    pub fn new(state_dir: &Path, metrics: Arc<Metrics>) -> Arc<Controller> {
        Self::with_clock(state_dir, metrics, Arc::new(SystemClock))
    }

    /// [`Controller::new`] on another clock (a hand-moved one in tests).
    pub fn with_clock(
        state_dir: &Path,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Controller> {
        let store = Store::new(state_dir);
        let states = store.load();
        let hook_metrics = HookMetrics::new(&metrics);
        Arc::new(Controller {
            inner: Mutex::new(Inner {
                plans: BTreeMap::new(),
                states,
                generation: 0,
                answers: BTreeMap::new(),
            }),
            store,
            gauges: RolloutMetrics::new(&metrics),
            metrics,
            clock,
            fleet: None,
            outbox: Arc::new(Outbox::new(hook_metrics.clone())),
            readings: Arc::default(),
            hook_metrics,
            series: Mutex::default(),
        })
    }

    /// The controller of a gateway that follows etcd: the fleet's rollouts, as `view` sees
    /// them (nothing is kept in `state_dir`: the states live in etcd).
    pub fn in_fleet(
        state_dir: &Path,
        metrics: Arc<Metrics>,
        view: Arc<FleetView>,
    ) -> Arc<Controller> {
        let hook_metrics = HookMetrics::new(&metrics);
        Arc::new(Controller {
            inner: Mutex::new(Inner {
                plans: BTreeMap::new(),
                states: BTreeMap::new(),
                generation: 0,
                answers: BTreeMap::new(),
            }),
            store: Store::new(state_dir),
            gauges: RolloutMetrics::new(&metrics),
            metrics,
            clock: Arc::new(SystemClock),
            fleet: Some(view),
            outbox: Arc::new(Outbox::new(hook_metrics.clone())),
            readings: Arc::default(),
            hook_metrics,
            series: Mutex::default(),
        })
    }

    /// The fleet's view, on a gateway that follows etcd.
    pub fn fleet(&self) -> Option<&Arc<FleetView>> {
        self.fleet.as_ref()
    }

    /// The plans of the running table, by route.
    pub fn plans(&self) -> BTreeMap<String, Plan> {
        self.lock().plans.clone()
    }

    /// The rollouts' states as this gateway knows them, by route.
    pub fn states(&self) -> BTreeMap<String, RolloutState> {
        self.lock().states.clone()
    }

    /// Forgets the states (and gauges) of the rollouts whose route has no plan any more;
    /// returns those routes.
    pub(super) fn forget_gone(
        &self,
        inner: &mut Inner,
        plans: &BTreeMap<String, Plan>,
    ) -> Vec<String> {
        let gone: Vec<String> = (inner.states.keys())
            .filter(|r| !plans.contains_key(*r))
            .cloned()
            .collect();
        for route in &gone {
            inner.states.remove(route);
            self.gauges.forget(route);
        }
        gone
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the moves made to the events hooks and keeps the states in `state_dir`.
    pub(super) fn save(&self, inner: &mut Inner) {
        self.announce(inner);
        if self.fleet.is_some() {
            return;
        }
        if let Err(e) = self.store.save(&inner.states) {
            error!("rollout: cannot keep the rollouts' state: {e}");
            self.metrics
                .state_write_error(crate::telemetry::labels::StateWrite::Rollouts);
        }
    }

    /// Publishes a state's gauges and counts its transition.
    pub(super) fn show(&self, inner: &Inner, route: &str, moved: bool) {
        let (Some(s), Some(p)) = (inner.states.get(route), inner.plans.get(route)) else {
            return;
        };
        let share = match s.share {
            Some(x) => f64::from(x),
            None => p.share_of(&p.base),
        };
        self.gauges.show(s, share);
        match &self.fleet {
            Some(f) => {
                let seen = f.seen();
                self.gauges.fleet(route, seen.driving, seen.gateways.len());
            }
            // One gateway is its own fleet: it drives, its figures are the fleet's.
            None => self.gauges.fleet(route, true, 1),
        }
        if moved {
            self.gauges.transition(route, s.state);
        }
    }

    /// One window's figures per group of the plan, judged, with the Prometheus gates' last
    /// readings.
    /// In the shadow stage, the canary's answers to the copies, judged by the stage's gates.
    pub(super) fn evaluate(&self, plan: &Plan, s: &RolloutState) -> Evaluation {
        let (step_started_ms, now) = (s.step_started_ms, self.clock.now_second());
        if let (true, Some(sh)) = (s.shadow, &plan.shadow) {
            let (from, to) = super::shadow::span(step_started_ms, now);
            let tally = self.metrics.shadow_tally();
            let counts = tally.counts(&plan.route, plan.canary_group(), from, to);
            return super::shadow::judge(sh, plan.canary_group(), &counts, (from, to));
        }
        let figures = self.own_window(plan, step_started_ms, now);
        let mut e = judge(&plan.gates, &figures, plan.canary);
        e.prometheus = self.prometheus_verdicts(plan, step_started_ms);
        e
    }

    /// This gateway's window of `plan`'s step at second `now`, per group.
    pub fn own_window(
        &self,
        plan: &Plan,
        step_started_ms: u64,
        now: u64,
    ) -> Vec<(String, crate::telemetry::window::Figures)> {
        let (from, to) = super::fleet::sum::span(plan, step_started_ms, now);
        (plan.groups.iter())
            .map(|g| {
                let w: Arc<Window> = self.metrics.rollout_window(&plan.route, g);
                (g.clone(), w.snapshot(from, to))
            })
            .collect()
    }

    /// The (route, group) pairs whose windows the rollouts judge (an upgrade hands them over).
    pub fn window_pairs(&self) -> Vec<(String, String)> {
        (self.lock().plans.values())
            .flat_map(|p| p.groups.iter().map(|g| (p.route.clone(), g.clone())))
            .collect()
    }

    /// Judges every rollout once; called every second by the service.
    pub fn tick(&self, steps: &dyn Steps) {
        if self.fleet.is_some() {
            return; // the fleet service judges (`fleet/service.rs`)
        }
        let table = Some(steps.table());
        let decisions: Vec<(String, Next, u64)> = {
            let mut inner = self.lock();
            let routes: Vec<String> = inner.plans.keys().cloned().collect();
            let mut out = Vec::new();
            for route in routes {
                let Some(plan) = inner.plans.get(&route).cloned() else {
                    continue;
                };
                let Some(s) = inner.states.get(&route) else {
                    continue;
                };
                let e = self.evaluate(&plan, s);
                let generation = s.generation;
                let failure = e.failure();
                if let (Some((gate, _)), true) = (&failure, !s.state.is_final()) {
                    self.gauges.breach(&route, gate);
                }
                let drift = drifted(&plan, s, table.as_deref());
                let n = match &drift {
                    Some((why, _)) => Some(Next::Set(Phase::Paused, Some(why.clone()))),
                    None => next(&plan, s, &e, self.clock.now_ms()),
                };
                let judged = s.state.is_judged() && (s.step > 0 || s.shadow);
                if let (Some((gate, why)), true, None) = (&failure, judged, &drift) {
                    self.announce_breach(&plan, s, gate, why);
                }
                if let Some(s) = inner.states.get_mut(&route) {
                    s.last_evaluation = Some(e);
                    // Held once the pause below is carried out (a move out of it lets go).
                    if let Some((_, running)) = drift {
                        s.held = Some(running);
                    }
                }
                if let Some(n) = n {
                    out.push((route, n, generation));
                }
            }
            out
        };
        for (route, n, generation) in decisions {
            let caller = Caller::default();
            match self.apply(&route, n, generation, MovedBy::Rollout, caller, steps) {
                Ok(()) | Err(RolloutError::Superseded) => {}
                Err(e) => error!("rollout {route}: {e}"),
            }
        }
    }

    /// Carries out a move. `by` is `rollout` (the gates) or `control`; `caller` the client and
    /// admin identity of a control.
    pub(super) fn apply(
        &self,
        route: &str,
        n: Next,
        generation: u64,
        by: MovedBy,
        caller: Caller,
        steps: &dyn Steps,
    ) -> Result<(), RolloutError> {
        match n {
            Next::Set(phase, reason) => {
                let mut inner = self.lock();
                inner.generation += 1;
                let g = inner.generation;
                let Some(s) = inner.states.get_mut(route) else {
                    return Err(RolloutError::NoRollout(route.to_string()));
                };
                if s.generation != generation {
                    return Err(RolloutError::Superseded);
                }
                s.generation = g;
                if phase == Phase::Progressing && s.state == Phase::Paused {
                    s.step_started_ms = self.clock.now_ms();
                }
                s.moved(phase, by, reason.clone());
                log::log!(
                    level_of(phase),
                    "rollout {route}: {} at step {}{}",
                    phase.as_str(),
                    inner.states.get(route).map_or(0, |s| s.step),
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                );
                self.show(&inner, route, true);
                self.save(&mut inner);
                Ok(())
            }
            Next::Apply(step, phase, reason) => {
                let mv = Move {
                    step,
                    phase,
                    reason,
                    generation,
                    by,
                };
                self.commit_step(route, mv, caller, steps)
            }
        }
    }

    /// Applies a step through the one attempt (trigger `rollout`): the step's weights set over
    /// the running version.
    fn commit_step(
        &self,
        route: &str,
        mv: Move,
        caller: Caller,
        steps: &dyn Steps,
    ) -> Result<(), RolloutError> {
        let Move {
            step,
            phase,
            reason,
            generation,
            by,
        } = mv;
        let mut decide = |running: &Overrides| {
            let inner = self.lock();
            let no_rollout = || RolloutError::NoRollout(route.to_string());
            let s = inner.states.get(route).ok_or_else(no_rollout)?;
            if s.generation != generation {
                return Ok(Decision::Superseded);
            }
            let plan = inner.plans.get(route).ok_or_else(no_rollout)?;
            let share = plan.share(step);
            let mut overrides = running.clone();
            overrides.set_over(route, plan.weights(share), &plan.base);
            let stage = (phase == Phase::Shadowing)
                .then_some(())
                .and(plan.shadow_mirror());
            overrides.set_shadow(route, stage);
            let note = serde_json::json!({
                "route": route,
                "step": step,
                "canary_share": share,
                "state": phase.as_str(),
                "by": by.as_str(),
                "reason": reason,
                "evaluation": s.last_evaluation,
            });
            Ok(Decision::Set(overrides, note))
        };
        let mut applied = || {
            let mut inner = self.lock();
            inner.generation += 1;
            let g = inner.generation;
            let Some(share) = inner.plans.get(route).map(|p| p.share(step)) else {
                return;
            };
            let Some(s) = inner.states.get_mut(route) else {
                return;
            };
            s.generation = g;
            s.step = step;
            s.share = Some(share);
            s.shadow = phase == Phase::Shadowing;
            s.step_started_ms = self.clock.now_ms();
            s.moved(phase, by, reason.clone());
            log::log!(
                level_of(phase),
                "rollout {route}: step {step} (canary {share}%), {}{}",
                phase.as_str(),
                reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            self.show(&inner, route, true);
            self.save(&mut inner);
        };
        let result = steps.commit_step(route, step, caller, &mut decide, &mut applied);
        if let Err(RolloutError::NotApplied(e)) = &result {
            warn!("rollout {route}: step {step} not applied: {e}");
        }
        result
    }
}

/// A move that commits a step: where to, into which state, why, decided on which generation
/// of the rollouts, by whom (`rollout`: the gates; `control`).
pub(super) struct Move {
    pub step: usize,
    pub phase: Phase,
    pub reason: Option<String>,
    pub generation: u64,
    pub by: MovedBy,
}

/// How loud a move is in the log: a failure, an abort or a pause is something an operator
/// must see (WARN), progress is INFO.
fn level_of(phase: Phase) -> log::Level {
    match phase {
        Phase::Failed | Phase::Aborted | Phase::Paused => log::Level::Warn,
        _ => log::Level::Info,
    }
}

/// A succeeded rollout whose file now gives the canary its final share (the file edited to
/// match the running table): it stays succeeded and the file's weights are used from now on.
fn caught_up(state: Option<&mut RolloutState>, plan: &Plan) -> Option<String> {
    let s = state?;
    let last = f64::from(plan.share(plan.steps.len()));
    if s.state != Phase::Succeeded
        || s.fingerprint == plan.fingerprint
        || (plan.share_of(&plan.base) - last).abs() > 0.01
    {
        return None;
    }
    s.fingerprint = plan.fingerprint.clone();
    s.share = None;
    Some(format!(
        "rollout of {}: the file now gives the canary its final {last}%, the rollout stays succeeded",
        plan.route
    ))
}

/// Why a rollout under way no longer matches the running table (a change made around the
/// rollout: a rollback pauses it itself, see [`Controller::rolled_back`]), with the running
/// weights; `None` when it matches. Such a rollout is paused, holding the running weights: a
/// resume applies its step again.
fn drifted(
    plan: &Plan,
    s: &RolloutState,
    table: Option<&crate::routing::RouteTable>,
) -> Option<(String, Vec<u32>)> {
    let active = s.state.is_judged();
    let share = s.share?;
    let route = table?.routes().iter().find(|r| *r.name == *plan.route)?;
    (active && route.split.weights != plan.weights(share)).then(|| {
        let why = format!(
            "the running table gives the canary {:.1}%, not step {}'s {share}%; resume applies the step again",
            plan.share_of(&route.split.weights),
            s.step
        );
        (why, route.split.weights.clone())
    })
}

/// The weights a reload keeps for a rollout's route: its step's, unless the running table gives
/// the canary another share. That is a rollback (or a change made around the rollout) that
/// the controller has not judged yet, and the reload would undo it: the rollout is paused
/// here, as the next tick would pause it, and the running weights are kept, as they are for a
/// rollout paused that way until a resume applies its step again. `generation` is the
/// controller's next one, taken by a rollout paused here (moves decided before are
/// superseded). `None`: nothing to keep (no step applied yet).
fn kept_weights(
    plan: &Plan,
    s: &mut RolloutState,
    table: Option<&crate::routing::RouteTable>,
    generation: u64,
) -> Option<Vec<u32>> {
    // Paused by a rollback: its weights, whatever the running table (none yet at startup).
    if let (Phase::Paused, Some(held)) = (s.state, &s.held) {
        if held.len() == plan.base.len() {
            return Some(held.clone());
        }
    }
    let share = s.share?;
    if let Some((why, running)) = drifted(plan, s, table) {
        warn!("rollout {}: paused at step {} ({why})", plan.route, s.step);
        s.generation = generation;
        s.moved(Phase::Paused, MovedBy::Rollout, Some(why));
        s.held = Some(running);
    }
    let step = plan.weights(share);
    let running = table
        .and_then(|t| t.routes().iter().find(|r| *r.name == *plan.route))
        .map(|r| r.split.weights.clone());
    match running {
        Some(w) if s.state == Phase::Paused && w.len() == step.len() && w != step => Some(w),
        _ => Some(step),
    }
}

impl Overlay for Controller {
    fn rolled_back(&self, to: crate::reload::VersionId, before: &RouteTable, after: &RouteTable) {
        // A fleet's rollout is not paused by one gateway's rollback: that gateway is divergent
        // until the fleet's next revision.
        if self.fleet.is_none() {
            self.hold_rollback(to, before, after);
        }
    }

    /// Follows the table: new rollouts start (pending), rollouts whose route's `split` or
    /// `rollout` changed start again from the table's weights, removed ones end; the others keep
    /// their step, set over the table.
    fn over(
        &self,
        plans: &BTreeMap<String, Plan>,
        running: &RouteTable,
        by: TriggerLabel,
    ) -> (Overrides, Option<serde_json::Value>) {
        if self.fleet.is_some() {
            self.follow_plans(plans);
            return (Overrides::default(), None);
        }
        let by = MovedBy::from(by);
        let plans = plans.clone();
        let mut inner = self.lock();
        let mut notes = Vec::new();
        for route in self.forget_gone(&mut inner, &plans) {
            notes.push(format!("rollout of {route} ended: no longer in the file"));
        }
        let mut overrides = Overrides::default();
        for (route, plan) in &plans {
            if let Some(note) = caught_up(inner.states.get_mut(route), plan) {
                info!("{note}");
                notes.push(note);
                continue;
            }
            let restart = match inner.states.get(route) {
                None => Some(format!("rollout of {route} started ({by})")),
                Some(s) if s.fingerprint != plan.fingerprint => Some(format!(
                    "rollout of {route} restarted from the file's weights: its split or rollout changed ({by})"
                )),
                Some(_) => None,
            };
            if let Some(note) = restart {
                info!("{note}");
                notes.push(note);
                let now = self.clock.now_ms();
                let mut s =
                    RolloutState::new(route, plan.canary_group(), &plan.fingerprint, by, now);
                inner.generation += 1;
                s.generation = inner.generation;
                inner.states.insert(route.clone(), s);
                continue;
            }
            inner.generation += 1;
            let generation = inner.generation;
            let kept = (inner.states.get_mut(route))
                .and_then(|s| kept_weights(plan, s, Some(running), generation));
            if let Some(weights) = kept {
                overrides.set_over(route, weights, &plan.base);
            }
            if inner.states.get(route).is_some_and(|s| s.shadow) {
                overrides.set_shadow(route, plan.shadow_mirror());
            }
        }
        self.expect_hooks(&inner.plans, &plans);
        inner.plans = plans;
        let routes: Vec<String> = inner.states.keys().cloned().collect();
        for r in &routes {
            self.show(&inner, r, false);
        }
        self.save(&mut inner);
        let note = (!notes.is_empty()).then(|| serde_json::json!({ "rollouts": notes }));
        (overrides, note)
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
