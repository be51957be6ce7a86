//! What the controller needs of the table's owner, and nothing more: the running table, a
//! commit of one move, the audit log. Implemented by the reloader; handed to each call of the
//! controller that needs it, so neither holds the other.

use super::error::RolloutError;
use crate::reload::{Caller, VersionId};
use crate::routing::{Overrides, RouteTable};
use std::sync::Arc;

/// What a move sets, decided under the commit lock from the weights set over the running
/// version.
pub enum Decision {
    /// These weights over the running version, and the note for its audit record.
    Set(Overrides, serde_json::Value),
    /// Another move came first: this one was decided on an older state.
    Superseded,
}

/// Decides a move from the running version's overrides.
pub type Decide<'a> = &'a mut dyn FnMut(&Overrides) -> Result<Decision, RolloutError>;

/// Records the move as done (the rollout's new state), under the commit lock, once the version
/// it set is in effect (or found to be the running one already).
pub type Applied<'a> = &'a mut dyn FnMut();

pub trait Steps: Send + Sync {
    /// The table requests see now.
    fn table(&self) -> Arc<RouteTable>;

    /// The version requests see now.
    fn version(&self) -> VersionId;

    /// Commits a move of `route`'s rollout to `step` (trigger `rollout`), audited with
    /// `caller` (a control's client and admin identity). On a gateway that follows etcd it is a
    /// local change (`N.K`, divergent): a gateway's own abort while etcd is away.
    fn commit_step(
        &self,
        route: &str,
        step: usize,
        caller: Caller,
        decide: Decide<'_>,
        applied: Applied<'_>,
    ) -> Result<(), RolloutError>;

    /// Appends a record that is not a change of the table (a control that moves no weight).
    fn audit(&self, record: &serde_json::Value) -> Result<(), String>;
}
