//! The last reading of every Prometheus gate, by route and gate name: written by the hooks
//! service's queries, read by the judge once a second.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One query's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The query and API it was asked of (a reading of an edited gate is not its own).
    pub query: String,
    pub url: String,
    /// When the query was sent (Unix milliseconds; the step's start is compared with it).
    pub at_ms: u64,
    pub at: String,
    pub value: Result<f64, String>,
}

#[derive(Default)]
pub struct Readings {
    last: Mutex<BTreeMap<(String, String), Reading>>,
}

impl Readings {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Reading>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, route: &str, gate: &str, r: Reading) {
        self.lock().insert((route.to_string(), gate.to_string()), r);
    }

    pub fn get(&self, route: &str, gate: &str) -> Option<Reading> {
        self.lock()
            .get(&(route.to_string(), gate.to_string()))
            .cloned()
    }

    /// Forgets the readings of gates no longer in the table.
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.lock().retain(|(route, gate), _| keep(route, gate));
    }
}
