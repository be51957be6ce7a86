//! What the running rollouts set over every table, whatever its source: a reload that leaves a
//! route's `split` and `rollout` unchanged keeps the step the rollout is on, a rollout step is
//! only a change of these weights, and a rollback re-applies the weights its version ran with.
//! A rollback is told to it once committed, so that the rollouts it touched hold its weights.

use crate::rollout::plan::Plan;
use crate::routing::{Overrides, RouteTable};
use crate::telemetry::labels::TriggerLabel;
use std::collections::BTreeMap;

/// Sets weights over decoded tables; called under the commit lock.
pub trait Overlay: Send + Sync {
    /// The weights to set over a decoded, valid table with these rollout `plans` (see
    /// `config::table::compile_rollout`) while `running` serves, and a
    /// note for the audit record (rollouts started, restarted or ended by this table). `by` is
    /// the trigger whose table it is.
    fn over(
        &self,
        plans: &BTreeMap<String, Plan>,
        running: &RouteTable,
        by: TriggerLabel,
    ) -> (Overrides, Option<serde_json::Value>);

    /// A rollback to version `to` replaced `before` with `after`; called under the commit lock,
    /// before any other trigger can reload.
    fn rolled_back(&self, to: super::VersionId, before: &RouteTable, after: &RouteTable);
}
