//! The controls (pause, resume, promote, abort) and the status the admin API and the CLI show.

use super::controller::Controller;
use super::error::RolloutError;
use super::machine::{advance, Next};
use super::plan::Plan;
use super::state::{MovedBy, Phase, RolloutState};
use super::steps::Steps;
use crate::reload::Caller;
use crate::stamp::now_rfc3339;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Promote { to_end: bool },
    Abort,
}

impl Control {
    pub fn parse(action: &str, to_end: bool) -> Option<Control> {
        Some(match action {
            "pause" => Control::Pause,
            "resume" => Control::Resume,
            "promote" => Control::Promote { to_end },
            "abort" => Control::Abort,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Promote { .. } => "promote",
            Control::Abort => "abort",
        }
    }
}

impl Controller {
    /// Every rollout's status.
    pub fn status_all(&self, steps: &dyn Steps) -> Value {
        let routes: Vec<String> = self.lock().states.keys().cloned().collect();
        Value::Array(
            routes
                .iter()
                .filter_map(|r| self.status(r, steps))
                .collect(),
        )
    }

    /// A rollout's status: state, step, canary share (set and in the running table), the last
    /// evaluation (figures per group, verdicts) and its moves.
    pub fn status(&self, route: &str, steps: &dyn Steps) -> Option<Value> {
        let table = Some(steps.table());
        let inner = self.lock();
        let s = inner.states.get(route)?;
        let plan = inner.plans.get(route);
        let running: Option<Vec<u32>> = table.as_ref().and_then(|t| {
            let r = t.routes().iter().find(|r| &*r.name == route)?;
            Some(r.split.weights.clone())
        });
        let file_share = plan.map(|p| p.share_of(&p.base));
        let table_share = match (plan, &running) {
            (Some(p), Some(w)) => Some(p.share_of(w)),
            _ => None,
        };
        Some(json!({
            "route": s.route,
            "canary": s.canary,
            "state": s.state.as_str(),
            "step": s.step,
            "steps": plan.map(|p| p.steps.clone()),
            "canary_share": match (plan, &s.held) {
                (Some(p), Some(held)) => Some(p.share_of(held)),
                _ => s.share.map_or(file_share, |x| Some(f64::from(x))),
            },
            "held_weights": s.held,
            "table_canary_share": table_share,
            "file_canary_share": file_share,
            "table_differs_from_file": match (plan, &running) {
                (Some(p), Some(w)) => *w != p.base,
                _ => false,
            },
            "since": s.since,
            "moved_by": s.moved_by,
            "step_ms": plan.map(|p| p.step_ms),
            "shadow": plan.and_then(|p| p.shadow.as_ref()).map(|sh| json!({
                "percent": f64::from(sh.share) / 1000.0,
                "duration_ms": sh.duration_ms,
                "window_ms": sh.gates.window_ms,
                "mirroring": s.shadow,
            })),
            "window_ms": plan.map(|p| p.gates.window_ms),
            "last_evaluation": s.last_evaluation,
            "confirmation": s.confirmation,
            "hooks": plan.map(|p| json!({
                "confirm_step": p.hooks.confirm_step.as_ref().map(|c| c.url.as_str()),
                "events": p.hooks.events.as_ref().map(|e| e.url.as_str()),
                "events_waiting": self.outbox.waiting(route),
            })),
            "history": s.history,
            "plan": plan.map(|p| p.fingerprint.clone()),
            "fleet": self.fleet().map(|f| f.route_json(route)),
        }))
    }

    /// Carries out a control on `route`'s rollout; audited with the client's address and the
    /// admin identity. Decided again when the gates moved the rollout in between (a few times
    /// at most).
    pub fn control(
        &self,
        route: &str,
        control: Control,
        caller: Caller,
        steps: &dyn Steps,
    ) -> Result<Value, RolloutError> {
        let mut tries = 0;
        loop {
            match self.control_once(route, control, caller.clone(), steps) {
                Err(RolloutError::Superseded) if tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    fn control_once(
        &self,
        route: &str,
        control: Control,
        caller: Caller,
        steps: &dyn Steps,
    ) -> Result<Value, RolloutError> {
        let no_rollout = || RolloutError::NoRollout(route.to_string());
        let (n, generation) = {
            let inner = self.lock();
            let s = inner.states.get(route).ok_or_else(no_rollout)?;
            let plan = inner.plans.get(route).ok_or_else(no_rollout)?;
            (decide(route, control, s, plan)?, s.generation)
        };
        let commits = matches!(n, Next::Apply(..));
        self.apply(
            route,
            n,
            generation,
            MovedBy::Control,
            caller.clone(),
            steps,
        )?;
        if !commits {
            // A move that changes no weight is not a version: its own audit line.
            let status = self.status(route, steps);
            let record = json!({
                "time": now_rfc3339(),
                "trigger": "rollout",
                "route": route,
                "control": control.as_str(),
                "client": caller.client,
                "identity": caller.identity,
                "state": status.as_ref().and_then(|s| s.get("state").cloned()),
                "step": status.as_ref().and_then(|s| s.get("step").cloned()),
            });
            if let Err(e) = steps.audit(&record) {
                log::error!("rollout {route}: audit: {e}");
            }
        }
        self.status(route, steps).ok_or_else(no_rollout)
    }
}

/// What a control does to a rollout in its state; a conflict when it does not apply.
pub(super) fn decide(
    route: &str,
    control: Control,
    s: &RolloutState,
    plan: &Plan,
) -> Result<Next, RolloutError> {
    let conflict = |why: &'static str| {
        Err(RolloutError::Conflict {
            route: route.to_string(),
            state: s.state.as_str(),
            why,
        })
    };
    let n = match (control, s.state) {
        (Control::Pause, Phase::Paused) => return conflict("already paused"),
        (Control::Pause, p) if p.is_final() => return conflict("nothing to pause"),
        (Control::Pause, _) => Next::Set(Phase::Paused, Some("paused by control".into())),
        (Control::Resume, Phase::Paused) if s.step > 0 => Next::Apply(
            s.step,
            Phase::Progressing,
            Some("resumed by control".into()),
        ),
        (Control::Resume, Phase::Paused) => {
            let again = Some("resumed by control: the shadow stage starts again".into());
            match super::shadow::begin(plan, again).filter(|_| s.shadow) {
                Some(shadow) => shadow,
                None => Next::Set(Phase::Pending, None),
            }
        }
        (Control::Resume, Phase::Failed | Phase::Aborted) => {
            Next::Set(Phase::Pending, Some("started again by control".into()))
        }
        (Control::Resume, _) => return conflict("nothing to resume"),
        (Control::Promote { .. }, Phase::Succeeded) => return conflict("at its last step already"),
        (Control::Promote { .. }, Phase::Failed | Phase::Aborted) => {
            return conflict("resume it first")
        }
        (Control::Promote { to_end: true }, _) => Next::Apply(
            plan.steps.len(),
            Phase::Succeeded,
            Some("promoted to the end by control".into()),
        ),
        (Control::Promote { to_end: false }, _) => match advance(plan, s.step) {
            Next::Set(Phase::AwaitingApproval, _) | Next::Apply(..) => Next::Apply(
                s.step + 1,
                Phase::Progressing,
                Some("promoted by control".into()),
            ),
            other => other,
        },
        (Control::Abort, Phase::Aborted | Phase::Failed) => {
            return conflict("the canary is at 0 already")
        }
        (Control::Abort, _) => Next::Apply(0, Phase::Aborted, Some("aborted by control".into())),
    };
    Ok(n)
}
