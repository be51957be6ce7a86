//! What a routes file trigger passes its text through before compiling it: the running
//! rollouts rewrite their routes' split weights (see `crate::rollout`), so that a reload which
//! leaves a route's `split` and `rollout` unchanged keeps the step the rollout is on. A rollback
//! is told to it once committed, so that the rollouts it touched hold its weights.

use crate::routing::RouteTable;

/// Rewrites routes text before it is compiled; called under the commit lock.
pub trait Overlay: Send + Sync {
    /// The text to compile, and a note for the audit record (rollouts started, restarted or
    /// ended by this text).
    fn overlay(&self, text: Vec<u8>, by: &str) -> (Vec<u8>, Option<serde_json::Value>);

    /// A rollback to version `to` replaced `before` with `after`; called under the commit lock,
    /// before any other trigger can reload.
    fn rolled_back(&self, to: super::VersionId, before: &RouteTable, after: &RouteTable);
}
