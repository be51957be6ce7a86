//! The steps of a fleet's rollouts as every gateway applies them: read with the table, at the
//! same revision, and set over it as the weights a single gateway's rollout sets over its
//! file — the same overrides, through the same attempt, whatever made the version (a push, a
//! step, a restart, a re-list). A step counts only for a table whose route has the plan it was
//! written for; the version of a table with steps is the highest revision among the table's
//! and those steps', which every gateway computes the same way from what etcd holds. A step
//! written by the move into a shadow stage (state `shadowing`, share 0) also sets the stage's
//! mirror over the route, as a single gateway's stage does; the move out of it (a step, a
//! failure, an abort) is a new step without it.

use super::super::state::Phase;
use super::record::StepRecord;
use crate::reload::Trigger;
use crate::rollout::plan::Plans;
use crate::routing::Overrides;

/// One step as read: the route, the revision it was written at, what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetStep {
    pub route: String,
    pub revision: u64,
    pub record: StepRecord,
}

/// The steps read with a table (none on a gateway that follows its routes file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetSteps(pub Vec<FleetStep>);

/// What the steps set over one table.
#[derive(Debug, Default)]
pub struct Applied {
    /// The newest step that applies: its revision, and the trigger and audit note of a
    /// version it makes.
    pub newest: Option<(u64, Trigger, serde_json::Value)>,
}

impl FleetSteps {
    /// Sets the weights of every step that belongs to `plans` (same route, same plan id, as
    /// many weights as the split has groups) over `overrides`, and the shadow stage's mirror
    /// of a step into the stage.
    pub fn over(&self, plans: &Plans, overrides: &mut Overrides) -> Applied {
        let mut applied = Applied::default();
        for s in &self.0 {
            let Some(plan) = plans.get(&s.route) else {
                continue;
            };
            if plan.fingerprint != s.record.plan || plan.base.len() != s.record.weights.len() {
                continue;
            }
            overrides.set_over(&s.route, s.record.weights.clone(), &plan.base);
            let stage = (s.record.state == Phase::Shadowing).then(|| plan.shadow_mirror());
            overrides.set_shadow(&s.route, stage.flatten());
            if applied
                .newest
                .as_ref()
                .is_none_or(|(r, ..)| s.revision > *r)
            {
                let trigger = Trigger::Rollout {
                    route: s.route.clone(),
                    step: s.record.step,
                };
                applied.newest = Some((s.revision, trigger, s.record.note(&s.route, s.revision)));
            }
        }
        applied
    }

    /// The version of a table at `table_revision` with these steps over it, and, when a step
    /// made it, the step's trigger and note.
    pub fn version(
        applied: Applied,
        table_revision: u64,
    ) -> (u64, Option<(Trigger, serde_json::Value)>) {
        match applied.newest {
            Some((r, trigger, note)) if r > table_revision => (r, Some((trigger, note))),
            _ => (table_revision, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::plan::Plan;
    use super::super::super::state::MovedBy;
    use super::*;

    fn plan(fingerprint: &str) -> Plan {
        Plan {
            fingerprint: fingerprint.into(),
            ..crate::rollout::plan::test_plan()
        }
    }

    fn step(plan: &str, revision: u64, weights: Vec<u32>) -> FleetStep {
        FleetStep {
            route: "shop".into(),
            revision,
            record: StepRecord {
                plan: plan.into(),
                step: 1,
                share: 10,
                weights,
                state: Phase::Progressing,
                by: MovedBy::Rollout,
                reason: None,
                gateway: "gw1".into(),
                identity: None,
                client: None,
            },
        }
    }

    #[test]
    fn a_step_applies_to_its_plan_only_and_names_the_version() {
        let plans: Plans = [("shop".to_string(), plan("p1"))].into();
        let steps = FleetSteps(vec![step("p1", 40, vec![90, 10])]);
        let mut o = Overrides::default();
        let a = steps.over(&plans, &mut o);
        assert_eq!(o.get("shop"), Some(&[90u32, 10][..]));
        let (version, made) = FleetSteps::version(a, 30);
        assert_eq!(version, 40);
        let (trigger, note) = made.expect("made by the step");
        assert_eq!(
            trigger,
            Trigger::Rollout {
                route: "shop".into(),
                step: 1
            }
        );
        assert_eq!(note["fleet"]["revision"], 40);
        // A table pushed after the step keeps it, at the table's revision.
        let mut o = Overrides::default();
        let (version, made) = FleetSteps::version(steps.over(&plans, &mut o), 45);
        assert_eq!((version, made.is_none()), (45, true));
        assert_eq!(o.get("shop"), Some(&[90u32, 10][..]));
        // A step of another plan (the route's split or rollout edited since), or with other
        // groups: not applied, and its revision does not count.
        for stale in [step("p0", 50, vec![90, 10]), step("p1", 50, vec![1, 2, 3])] {
            let mut o = Overrides::default();
            let a = FleetSteps(vec![stale]).over(&plans, &mut o);
            assert!(o.is_empty());
            assert_eq!(FleetSteps::version(a, 30).0, 30);
        }
    }

    #[test]
    fn a_step_into_the_shadow_stage_sets_its_mirror_and_the_next_step_takes_it_away() {
        let staged = Plan {
            shadow: Some(crate::rollout::shadow::Shadow::for_tests(50_000, 1000, 20)),
            ..plan("p1")
        };
        let plans: Plans = [("shop".to_string(), staged)].into();
        let mut stage = step("p1", 40, vec![100, 0]);
        stage.record.step = 0;
        stage.record.state = Phase::Shadowing;
        let mut o = Overrides::default();
        FleetSteps(vec![stage.clone()]).over(&plans, &mut o);
        let mirror = o.shadow("shop").cloned();
        assert_eq!(
            mirror.map(|m| (m.group, m.share)),
            Some(("canary".to_string(), 50_000))
        );
        // Step 1 (or a failure) replaces the stage's record: weights, no mirror.
        let mut o = Overrides::default();
        FleetSteps(vec![step("p1", 41, vec![90, 10])]).over(&plans, &mut o);
        assert_eq!(
            (o.get("shop"), o.shadow("shop")),
            (Some(&[90u32, 10][..]), None)
        );
        // A plan without a stage never gets a mirror.
        let plans: Plans = [("shop".to_string(), plan("p1"))].into();
        let mut o = Overrides::default();
        FleetSteps(vec![stage]).over(&plans, &mut o);
        assert_eq!(o.shadow("shop"), None);
    }
}
