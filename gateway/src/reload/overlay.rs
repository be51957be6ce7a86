//! What a routes file trigger passes its text through before compiling it: the running
//! rollouts rewrite their routes' split weights (see `crate::rollout`), so that a reload which
//! leaves a route's `split` and `rollout` unchanged keeps the step the rollout is on.

/// Rewrites routes text before it is compiled; called under the commit lock.
pub trait Overlay: Send + Sync {
    /// The text to compile, and a note for the audit record (rollouts started, restarted or
    /// ended by this text).
    fn overlay(&self, text: Vec<u8>, by: &str) -> (Vec<u8>, Option<serde_json::Value>);
}
