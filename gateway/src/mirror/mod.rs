//! Shadow traffic (`routes[].mirror`): copies of a share of a route's requests, sent beside the
//! real ones to another group from their own tasks, whose answers are thrown away. A copy never
//! delays or changes what the client gets: it is built from what already passes through the
//! proxy's hooks ([`Pending`]), bounded by `max_in_flight` and `timeout_ms`, never retried, and
//! counted only in its own metrics ([`MirrorMetrics`]) and, per second, in the [`tally`] a
//! rollout's shadow stage judges.

mod metrics;
mod pending;
mod send;
pub mod tally;

pub use metrics::{MirrorMetrics, Outcome};
pub use pending::Pending;
pub use send::{send, Copy, MARKER};
