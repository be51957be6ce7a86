//! The fleet's window of a rollout: the sum of the live gateways' windows of its current step,
//! and each gateway's part of it. Pure: the driver judges the sum as a single gateway judges
//! its own window; every gateway shows it.

use super::super::plan::Plan;
use super::record::{FiguresRecord, LocalAbort};
use crate::telemetry::window::Figures;
use serde::Serialize;

/// The seconds a window of `plan`'s gates covers at second `now` on a step started at
/// `step_started_ms`: the last `window_ms` (whole seconds) and the second under way, never
/// before the step.
pub fn span(plan: &Plan, step_started_ms: u64, now: u64) -> (u64, u64) {
    let n = plan.gates.window_ms.div_ceil(1000);
    (now.saturating_sub(n).max(step_started_ms / 1000), now)
}

/// One gateway's part of the fleet's window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayPart {
    pub gateway: String,
    /// Requests of every group of the route through this gateway in the window, and its
    /// percentage of the fleet's.
    pub requests: u64,
    pub share: f64,
    pub canary_requests: u64,
    pub canary_errors: u64,
    /// The seconds its window covered (`from..=to`, Unix).
    pub from: u64,
    pub to: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_abort: Option<LocalAbort>,
}

/// The fleet's window of a step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sum {
    /// Per group of the plan, summed.
    pub figures: Vec<(String, Figures)>,
    pub gateways: Vec<GatewayPart>,
}

impl Sum {
    /// The gateways that took the canary to 0 on their own on this step.
    pub fn local_aborts(&self) -> impl Iterator<Item = (&str, &LocalAbort)> {
        (self.gateways.iter()).filter_map(|g| Some((g.gateway.as_str(), g.local_abort.as_ref()?)))
    }
}

/// Sums the `windows` of `plan`'s step started at `step_started_ms` (one per live gateway);
/// windows of another plan or step, or with other groups, are left out.
pub fn sum(plan: &Plan, step_started_ms: u64, windows: &[FiguresRecord]) -> Sum {
    let mut figures: Vec<(String, Figures)> = (plan.groups.iter())
        .map(|g| (g.clone(), Figures::default()))
        .collect();
    let mut gateways = Vec::new();
    for w in windows {
        if w.plan != plan.fingerprint
            || w.step_started_ms != step_started_ms
            || w.groups.len() != plan.groups.len()
        {
            continue;
        }
        let mut part = GatewayPart {
            gateway: w.gateway.clone(),
            requests: 0,
            share: 0.0,
            canary_requests: 0,
            canary_errors: 0,
            from: w.from,
            to: w.to,
            local_abort: w.local_abort.clone(),
        };
        for (i, c) in w.groups.iter().enumerate() {
            figures[i].1.add(&c.figures());
            part.requests += c.requests;
            if i == plan.canary {
                part.canary_requests = c.requests;
                part.canary_errors = c.errors;
            }
        }
        gateways.push(part);
    }
    let total: u64 = gateways.iter().map(|g| g.requests).sum();
    for g in &mut gateways {
        if total > 0 {
            g.share = (1000.0 * g.requests as f64 / total as f64).round() / 10.0;
        }
    }
    gateways.sort_by(|a, b| a.gateway.cmp(&b.gateway));
    Sum { figures, gateways }
}

#[cfg(test)]
mod tests {
    use super::super::record::Counts;
    use super::*;
    use crate::rollout::plan::Gates;

    fn plan() -> Plan {
        let p = crate::rollout::plan::test_plan();
        Plan {
            gates: Gates {
                window_ms: 5000,
                ..p.gates
            },
            fingerprint: "p1".into(),
            ..p
        }
    }

    fn window(
        gateway: &str,
        plan: &str,
        started: u64,
        stable: u64,
        canary: (u64, u64),
    ) -> FiguresRecord {
        let counts = |requests, errors| Counts {
            requests,
            errors,
            buckets: vec![0, 0, requests],
        };
        FiguresRecord {
            gateway: gateway.into(),
            plan: plan.into(),
            step_started_ms: started,
            from: 100,
            to: 105,
            groups: vec![counts(stable, 0), counts(canary.0, canary.1)],
            local_abort: None,
        }
    }

    #[test]
    fn the_fleet_window_is_the_sum_of_the_step_s_windows() {
        let p = plan();
        let windows = [
            window("gw2", "p1", 7000, 90, (10, 1)),
            window("gw1", "p1", 7000, 270, (30, 0)),
            window("gw3", "p1", 7000, 0, (0, 0)),
            // Of the step before, and of another plan: left out.
            window("gw4", "p1", 6000, 900, (100, 100)),
            window("gw5", "p0", 7000, 900, (100, 100)),
        ];
        let s = sum(&p, 7000, &windows);
        let canary = &s.figures[1].1;
        assert_eq!((canary.requests, canary.errors), (40, 1));
        assert_eq!(canary.latency_ms(99.0), Some(5));
        assert_eq!(s.figures[0].1.requests, 360);
        let parts: Vec<(&str, f64, u64)> = (s.gateways.iter())
            .map(|g| (g.gateway.as_str(), g.share, g.canary_requests))
            .collect();
        assert_eq!(
            parts,
            [("gw1", 75.0, 30), ("gw2", 25.0, 10), ("gw3", 0.0, 0)]
        );
    }

    #[test]
    fn the_window_starts_with_the_step() {
        let p = plan();
        assert_eq!(span(&p, 0, 1000), (995, 1000));
        assert_eq!(span(&p, 998_500, 1000), (998, 1000));
    }
}
