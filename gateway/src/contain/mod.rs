//! Containing a failing upstream on the request path: the decisions the proxy's hooks ask for
//! when an upstream is slow, down or overloaded. No I/O here; target health and group load
//! live in [`crate::health`].
//!
//! - [`timeouts`]: peer timeouts from the route's `timeouts` and the request's deadline.
//! - [`retry`]: whether a failed attempt is tried again.
//! - [`budget`]: the per-route retry budget over 10 s.
//! - [`explain`]: the `x-dyegate-decision` header for trusted debugging clients.

pub mod budget;
pub mod explain;
pub mod retry;
pub mod timeouts;

pub use budget::{RetryBudget, RetryBudgets};
pub use explain::{DebugPolicy, Explanation, DEBUG_HEADER, DECISION_HEADER};
pub use retry::{reason_of, verdict, Replay, Verdict};
pub use timeouts::{attempt_timeouts, is_grpc, timeout_kind, AttemptTimeouts, StreamKind};
