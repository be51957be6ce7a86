//! Containing a failing upstream on the request path: the decisions the proxy's hooks ask for
//! when an upstream is slow, down or overloaded. No I/O here; the state these decisions read
//! (target health, budgets, in-flight counts) lives in [`crate::health`].
//!
//! - [`timeouts`]: peer timeouts from the route's `timeouts` and the request's deadline.

pub mod timeouts;

pub use timeouts::{attempt_timeouts, timeout_kind, AttemptTimeouts};
