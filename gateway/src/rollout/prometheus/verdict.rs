//! The Prometheus gates judged for a step, from their last readings: pure, so that unit tests
//! exercise every verdict without a Prometheus. Only a reading taken after the step began
//! counts (`fresh`): a step is promoted on a value of its own, never on one of the step before.

use super::readings::Reading;
use super::{OnError, PromGate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromVerdict {
    pub gate: String,
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    pub on_error: OnError,
    /// The last value, when the last query gave one.
    pub value: Option<f64>,
    /// Why the last query gave no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the last query was sent (RFC 3339); `None` before the first.
    pub at: Option<String>,
    /// The last query was sent after the step began: it counts for this step.
    pub fresh: bool,
    /// The value is within `max`/`min`.
    pub ok: bool,
}

impl PromVerdict {
    /// A fresh value out of bounds, or a fresh error of a gate whose errors fail.
    pub fn breached(&self) -> bool {
        self.fresh && (self.value.is_some() && !self.ok || self.failed_on(OnError::Fail))
    }

    /// A fresh error of a gate whose errors do `on_error`.
    pub fn failed_on(&self, on_error: OnError) -> bool {
        self.fresh && self.error.is_some() && self.on_error == on_error
    }

    /// The step may be promoted as far as this gate goes.
    pub fn lets_go(&self) -> bool {
        self.fresh && (self.ok || self.failed_on(OnError::Ignore))
    }

    /// One line for logs, audit and events.
    pub fn describe(&self) -> String {
        let limit = match (self.max, self.min) {
            (Some(max), Some(min)) => format!("expected from {min} to {max}"),
            (Some(max), None) => format!("max {max}"),
            (None, Some(min)) => format!("min {min}"),
            (None, None) => String::new(),
        };
        match (&self.value, &self.error) {
            (_, Some(e)) => format!("prometheus gate {}: {e}", self.gate),
            (Some(v), None) => format!(
                "prometheus gate {} breached: {v} ({limit}; query {:?} at {})",
                self.gate,
                self.query,
                self.at.as_deref().unwrap_or("-")
            ),
            (None, None) => format!("prometheus gate {}: no reading yet", self.gate),
        }
    }
}

/// The verdict of every gate on the step that began at `step_started_ms`, from `reading` (the
/// gate's last reading, by name).
pub fn verdicts(
    gates: &[PromGate],
    reading: impl Fn(&str) -> Option<Reading>,
    step_started_ms: u64,
) -> Vec<PromVerdict> {
    gates
        .iter()
        .map(|g| {
            let r = reading(&g.name).filter(|r| r.query == g.query && r.url == g.url.as_str());
            let value = r.as_ref().and_then(|r| r.value.as_ref().ok().copied());
            PromVerdict {
                gate: g.name.clone(),
                query: g.query.clone(),
                max: g.max,
                min: g.min,
                on_error: g.on_error,
                value,
                error: r.as_ref().and_then(|r| r.value.as_ref().err().cloned()),
                at: r.as_ref().map(|r| r.at.clone()),
                fresh: r.as_ref().is_some_and(|r| r.at_ms >= step_started_ms),
                ok: value
                    .is_some_and(|v| g.max.is_none_or(|m| v <= m) && g.min.is_none_or(|m| v >= m)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::hooks::HookUrl;

    pub(crate) fn gate(on_error: OnError) -> PromGate {
        PromGate {
            name: "checkout-errors".into(),
            url: HookUrl::parse("http://127.0.0.1:9090").expect("url"),
            query: "sum(x)".into(),
            max: Some(0.5),
            min: None,
            interval_ms: 1000,
            on_error,
        }
    }

    fn read(at_ms: u64, value: Result<f64, String>) -> Option<Reading> {
        Some(Reading {
            query: "sum(x)".into(),
            url: "http://127.0.0.1:9090".into(),
            at_ms,
            at: "t".into(),
            value,
        })
    }

    #[test]
    fn only_a_reading_taken_after_the_step_began_counts() {
        let g = [gate(OnError::Pause)];
        let v = &verdicts(&g, |_| read(999, Ok(0.1)), 1000)[0];
        assert!(v.ok && !v.fresh && !v.lets_go() && !v.breached());
        let v = &verdicts(&g, |_| read(1000, Ok(0.1)), 1000)[0];
        assert!(v.lets_go() && !v.breached());
        let v = &verdicts(&g, |_| read(1000, Ok(0.6)), 1000)[0];
        assert!(!v.lets_go() && v.breached());
        assert!(
            v.describe().starts_with(
                "prometheus gate checkout-errors breached: 0.6 (max 0.5; query \"sum(x)\""
            ),
            "{}",
            v.describe()
        );
        // Before the first reading, and a reading of another query: nothing counts.
        let v = &verdicts(&g, |_| None, 0)[0];
        assert!(!v.fresh && !v.lets_go() && !v.breached() && v.at.is_none());
        let mut edited = gate(OnError::Pause);
        edited.query = "sum(y)".into();
        assert!(!verdicts(&[edited], |_| read(5000, Ok(0.1)), 0)[0].fresh);
    }

    #[test]
    fn errors_follow_on_error() {
        let err = || {
            read(
                2000,
                Err("query \"sum(x)\": empty result (no series)".into()),
            )
        };
        let pause = &verdicts(&[gate(OnError::Pause)], |_| err(), 1000)[0];
        assert!(pause.failed_on(OnError::Pause) && !pause.breached() && !pause.lets_go());
        let fail = &verdicts(&[gate(OnError::Fail)], |_| err(), 1000)[0];
        assert!(fail.breached() && !fail.lets_go());
        let ignore = &verdicts(&[gate(OnError::Ignore)], |_| err(), 1000)[0];
        assert!(!ignore.breached() && ignore.lets_go());
        assert_eq!(
            pause.describe(),
            "prometheus gate checkout-errors: query \"sum(x)\": empty result (no series)"
        );
    }

    #[test]
    fn min_and_max_bound_the_value_inclusively() {
        let mut g = gate(OnError::Pause);
        g.min = Some(0.1);
        for (v, ok) in [(0.1, true), (0.5, true), (0.05, false), (0.51, false)] {
            assert_eq!(
                verdicts(&[g.clone()], |_| read(0, Ok(v)), 0)[0].ok,
                ok,
                "{v}"
            );
        }
    }
}
