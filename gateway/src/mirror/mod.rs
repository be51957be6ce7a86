//! Shadow traffic (`routes[].mirror`): copies of a share of a route's requests, sent beside the
//! real ones to another group from their own tasks. A copy never delays or changes what the
//! client gets: it is built from what already passes through the proxy's hooks ([`Pending`]),
//! bounded by `max_in_flight` and `timeout_ms`, sent over its own pool of connections
//! ([`Pool`]), never retried, and counted only in its own metrics ([`MirrorMetrics`]). With
//! `compare`, its answer is summarized and judged against the real one ([`Primary`], `meet`,
//! `answer`); `GET /mirrors` shows the counts and the last mismatches ([`Book`]); per second, the
//! [`tally`] a rollout's shadow stage judges.

mod answer;
mod book;
mod lane;
mod meet;
mod metrics;
mod pending;
mod pool;
mod send;
pub mod tally;
mod trace;

pub use book::{Book, OUTCOMES};
pub use meet::Primary;
pub use metrics::{MirrorMetrics, Outcome};
pub use pending::Pending;
pub use pool::{Pool, MARKER};
pub use send::{send, Copy};
