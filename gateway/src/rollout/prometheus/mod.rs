//! `rollout.gates.prometheus`: instant queries against a Prometheus HTTP API, evaluated every
//! `interval_ms` by the hooks service (on the driver only, in a fleet), judged with the
//! gateway's own gates.
//!
//! - [`answer`] turns an API answer into one value, or an error naming the query (pure).
//! - [`readings`] keeps the last reading of every gate, shared by the poller and the judge.
//! - [`verdict`] judges the readings for a step (pure).

pub mod answer;
pub mod readings;
pub mod verdict;

use super::hooks::HookUrl;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an error, an empty answer or a timeout of a query does.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Hold the rollout on its step, state `paused`, until a control resumes it.
    #[default]
    Pause,
    /// As a breach: `on_failure` applies.
    Fail,
    /// The gate does not hold the step back.
    Ignore,
}

/// One `rollout.gates.prometheus` entry, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct PromGate {
    pub name: String,
    /// The API's base (`/api/v1/query` is appended).
    pub url: HookUrl,
    pub query: String,
    pub max: Option<f64>,
    pub min: Option<f64>,
    pub interval_ms: u64,
    pub on_error: OnError,
}

impl PromGate {
    /// How long a query may take: its interval, at most 5 s.
    pub fn timeout_ms(&self) -> u64 {
        self.interval_ms.min(5_000)
    }
}
