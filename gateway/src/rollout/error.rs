//! Why a move or a control of a rollout did not happen. The admin API chooses the HTTP status;
//! the texts are the ones users see.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutError {
    /// No rollout on this route.
    NoRollout(String),
    /// Another move (the gates, a control) came first: this one was decided on an older state.
    Superseded,
    /// The control does not apply in the rollout's state: the route, its state and why.
    Conflict {
        route: String,
        state: &'static str,
        why: &'static str,
    },
    /// The move was decided but its version could not be committed (the reloader's errors).
    NotApplied(String),
    /// A fleet's rollout cannot be moved now: etcd is out of reach (why).
    Unavailable(String),
}

impl fmt::Display for RolloutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RolloutError::NoRollout(route) => write!(f, "no rollout for route {route:?}"),
            RolloutError::Superseded => f.write_str("superseded"),
            RolloutError::Conflict { route, state, why } => {
                write!(f, "rollout of {route} is {state}: {why}")
            }
            RolloutError::NotApplied(e) => f.write_str(e),
            RolloutError::Unavailable(e) => {
                write!(f, "the fleet's rollout cannot be moved now: {e}")
            }
        }
    }
}

impl std::error::Error for RolloutError {}
