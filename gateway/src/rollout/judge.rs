//! The gates judged on a window's figures: a pure function of the figures per group and the
//! plan's gates, so that unit tests exercise every verdict without traffic.

use super::plan::Gates;
use super::prometheus::verdict::PromVerdict;
use super::prometheus::OnError;
use crate::telemetry::window::Figures;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFigures {
    pub group: String,
    pub canary: bool,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// At the gates' percentile, bucket upper bound.
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `error_rate`, `latency` or `latency_ratio`; in `shadowing`, `shadow_error_rate`,
    /// `shadow_latency` or `shadow_mismatch_rate`.
    pub gate: String,
    pub value: f64,
    pub limit: f64,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub at: String,
    pub window_ms: u64,
    pub min_requests: u64,
    pub latency_percentile: f64,
    /// The canary has `min_requests` in the window: the verdicts count.
    pub enough_traffic: bool,
    pub groups: Vec<GroupFigures>,
    pub gates: Vec<Verdict>,
    /// The Prometheus gates' last readings, judged for the step (empty without such gates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prometheus: Vec<PromVerdict>,
    /// In `shadowing`: the canary's answers to the copies the stage's gates judged (its
    /// `groups` then has the canary alone, on those figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<super::shadow::ShadowFigures>,
}

impl Evaluation {
    /// The first failed gate, when the verdicts count.
    pub fn breach(&self) -> Option<&Verdict> {
        if !self.enough_traffic {
            return None;
        }
        self.gates.iter().find(|v| !v.ok)
    }

    /// Why the rollout fails now, with the breached gate's name: a gate on the gateway's own
    /// figures (when they count), or a Prometheus gate's fresh value out of bounds (or its fresh
    /// error, with `on_error: fail`).
    pub fn failure(&self) -> Option<(String, String)> {
        if let Some(v) = self.breach() {
            return Some((v.gate.clone(), self.describe(v)));
        }
        (self.prometheus.iter())
            .find(|p| p.breached())
            .map(|p| (p.gate.clone(), p.describe()))
    }

    /// Why the rollout is held (paused) now: a Prometheus gate with `on_error: pause` whose
    /// query failed since the step began.
    pub fn held(&self) -> Option<String> {
        (self.prometheus.iter())
            .find(|p| p.failed_on(OnError::Pause))
            .map(|p| format!("{} (on_error: pause; resume when it answers)", p.describe()))
    }

    /// Every Prometheus gate has a value of this step within bounds (or an error it ignores).
    pub fn prometheus_lets_go(&self) -> bool {
        self.prometheus.iter().all(PromVerdict::lets_go)
    }

    /// One line for logs and audit: the gate and the figures.
    pub fn describe(&self, v: &Verdict) -> String {
        if let Some(f) = &self.shadow {
            return super::shadow::describe(self, f, v);
        }
        let c = self.groups.iter().find(|g| g.canary);
        format!(
            "gate {} breached: {:.4} > {} (canary {} requests, {} errors, p{} latency {} ms, window {} ms)",
            v.gate,
            v.value,
            v.limit,
            c.map_or(0, |g| g.requests),
            c.map_or(0, |g| g.errors),
            self.latency_percentile,
            c.and_then(|g| g.latency_ms).map_or("-".into(), |l| l.to_string()),
            self.window_ms
        )
    }
}

/// Judges `canary` (index in `figures`) against the gates.
pub fn judge(gates: &Gates, figures: &[(String, Figures)], canary: usize) -> Evaluation {
    let q = gates.latency_percentile;
    let groups: Vec<GroupFigures> = (figures.iter().enumerate())
        .map(|(i, (g, f))| GroupFigures {
            group: g.clone(),
            canary: i == canary,
            requests: f.requests,
            errors: f.errors,
            error_rate: f.error_rate(),
            latency_ms: f.latency_ms(q),
        })
        .collect();
    let c = figures
        .get(canary)
        .map(|(_, f)| f.clone())
        .unwrap_or_default();
    let mut verdicts = Vec::new();
    if let Some(max) = gates.max_error_rate {
        let v = c.error_rate();
        verdicts.push(Verdict {
            gate: "error_rate".into(),
            value: v,
            limit: max,
            ok: v <= max,
        });
    }
    let canary_latency = c.latency_ms(q);
    if let (Some(max), Some(l)) = (gates.max_latency_ms, canary_latency) {
        verdicts.push(Verdict {
            gate: "latency".into(),
            value: l as f64,
            limit: max as f64,
            ok: l <= max,
        });
    }
    if let (Some(max), Some(l)) = (gates.max_latency_ratio, canary_latency) {
        let mut others = Figures::default();
        for (i, (_, f)) in figures.iter().enumerate() {
            if i != canary {
                others.add(f);
            }
        }
        // Without traffic on the other groups there is nothing to compare with: holds.
        if let Some(o) = others.latency_ms(q) {
            let ratio = l as f64 / o.max(1) as f64;
            verdicts.push(Verdict {
                gate: "latency_ratio".into(),
                value: ratio,
                limit: max,
                ok: ratio <= max,
            });
        }
    }
    Evaluation {
        at: crate::stamp::now_rfc3339(),
        window_ms: gates.window_ms,
        min_requests: gates.min_requests,
        latency_percentile: q,
        enough_traffic: c.requests >= gates.min_requests,
        groups,
        gates: verdicts,
        prometheus: Vec::new(),
        shadow: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::window::Window;

    fn gates() -> Gates {
        Gates {
            window_ms: 1000,
            min_requests: 20,
            max_error_rate: Some(0.05),
            max_latency_ms: Some(500),
            latency_percentile: 95.0,
            max_latency_ratio: Some(3.0),
            prometheus: vec![],
        }
    }

    fn figures(n: u64, errors: u64, ms: u64) -> Figures {
        let w = Window::new();
        for i in 0..n {
            w.record_at(1, i < errors, ms);
        }
        w.snapshot(1, 1)
    }

    #[test]
    fn verdicts() {
        let stable = ("stable".to_string(), figures(100, 0, 20));
        let e = judge(
            &gates(),
            &[stable.clone(), ("c".into(), figures(30, 9, 20))],
            1,
        );
        assert!(e.enough_traffic);
        assert_eq!(e.breach().map(|v| v.gate.as_str()), Some("error_rate"));
        assert!(e
            .describe(e.breach().expect("breach"))
            .contains("0.3000 > 0.05"));
        let e = judge(
            &gates(),
            &[stable.clone(), ("c".into(), figures(30, 0, 900))],
            1,
        );
        assert_eq!(e.breach().map(|v| v.gate.as_str()), Some("latency"));
        let e = judge(
            &gates(),
            &[stable.clone(), ("c".into(), figures(30, 0, 140))],
            1,
        );
        assert_eq!(e.breach().map(|v| v.gate.as_str()), Some("latency_ratio"));
        let e = judge(
            &gates(),
            &[stable.clone(), ("c".into(), figures(30, 1, 20))],
            1,
        );
        assert_eq!(e.breach(), None);
        // Too little traffic: never a breach, whatever the figures.
        let e = judge(&gates(), &[stable, ("c".into(), figures(5, 5, 900))], 1);
        assert!(!e.enough_traffic);
        assert_eq!(e.breach(), None);
    }

    #[test]
    fn a_gate_at_its_limit_holds_and_min_requests_counts_exactly() {
        let stable = ("stable".to_string(), figures(100, 0, 20));
        // 1 error in 20: 5%, the limit itself.
        let e = judge(
            &gates(),
            &[stable.clone(), ("c".into(), figures(20, 1, 20))],
            1,
        );
        assert!(e.enough_traffic);
        assert_eq!(e.gates.len(), 3, "{:?}", e.gates);
        assert!(e.gates.iter().all(|v| v.ok), "{:?}", e.gates);
        assert_eq!(e.breach(), None);
        // 19 requests: one short, not judged, whatever the figures.
        let e = judge(&gates(), &[stable, ("c".into(), figures(19, 19, 20))], 1);
        assert!(!e.enough_traffic);
        assert_eq!(e.breach(), None);
        assert_eq!(e.groups[1].error_rate, 1.0);
    }

    #[test]
    fn the_latency_ratio_holds_when_the_other_groups_have_no_traffic() {
        let e = judge(
            &gates(),
            &[
                ("stable".into(), Figures::default()),
                ("c".into(), figures(30, 0, 400)),
            ],
            1,
        );
        let gates: Vec<&str> = e.gates.iter().map(|v| v.gate.as_str()).collect();
        assert_eq!(gates, ["error_rate", "latency"]);
        assert_eq!(e.breach(), None);
    }

    #[test]
    fn without_gates_nothing_is_breached() {
        let none = Gates {
            max_error_rate: None,
            max_latency_ms: None,
            max_latency_ratio: None,
            ..gates()
        };
        let e = judge(
            &none,
            &[
                ("stable".into(), figures(100, 0, 20)),
                ("c".into(), figures(30, 30, 9000)),
            ],
            1,
        );
        assert!(e.enough_traffic);
        assert!(e.gates.is_empty());
        assert_eq!(e.breach(), None);
    }
}
