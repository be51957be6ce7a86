//! The fleet's window of a rollout: the sum of the live gateways' windows of its current step
//! (in a shadow stage, of their tallies of the canary's answers to their copies), and each
//! gateway's part of it. Pure: the driver judges the sum as a single gateway judges its own
//! window (or tally); every gateway shows it.

use super::super::plan::Plan;
use super::super::shadow::ShadowFigures;
use super::record::{FiguresRecord, LocalAbort};
use crate::mirror::tally::ShadowCounts;
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
    /// In a shadow stage: the canary's answers to this gateway's copies (latency at the
    /// stage's percentile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowFigures>,
}

/// The fleet's window of a step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sum {
    /// Per group of the plan, summed.
    pub figures: Vec<(String, Figures)>,
    /// In a shadow stage: the gateways' tallies of the canary's answers to their copies,
    /// summed (counts and latency buckets: a percentile is read from the summed buckets).
    pub shadow: ShadowCounts,
    pub gateways: Vec<GatewayPart>,
}

impl Sum {
    /// The gateways that took the canary to 0 on their own on this step.
    pub fn local_aborts(&self) -> impl Iterator<Item = (&str, &LocalAbort)> {
        (self.gateways.iter()).filter_map(|g| Some((g.gateway.as_str(), g.local_abort.as_ref()?)))
    }
}

/// Sums the `windows` of `plan`'s step started at `step_started_ms` (one per live gateway);
/// windows of another plan or step, or with other groups, are left out, their shadow tallies
/// with them.
pub fn sum(plan: &Plan, step_started_ms: u64, windows: &[FiguresRecord]) -> Sum {
    let mut figures: Vec<(String, Figures)> = (plan.groups.iter())
        .map(|g| (g.clone(), Figures::default()))
        .collect();
    let mut shadow = ShadowCounts::default();
    let percentile = plan.shadow.as_ref().map(|s| s.gates.latency_percentile);
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
            shadow: None,
        };
        if let (Some(r), Some(q)) = (&w.shadow, percentile) {
            let own = r.counts();
            shadow.add(&own);
            part.shadow = Some(ShadowFigures::of(&own, q));
        }
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
    Sum {
        figures,
        shadow,
        gateways,
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{Counts, ShadowRecord};
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
            shadow: None,
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

    /// A window of the shadow stage: `copies` answered in `fast` ms (the first ones) or 900 ms.
    fn shadowed(gateway: &str, started: u64, copies: u64, fast: u64, errors: u64) -> FiguresRecord {
        let mut answers = crate::telemetry::window::Figures {
            requests: copies,
            errors,
            ..Default::default()
        };
        // Bucket 2 holds answers of at most 5 ms, bucket 13 those of up to 1000 ms.
        answers.buckets[2] = fast;
        answers.buckets[13] = copies - fast;
        let counts = ShadowCounts {
            answers,
            compared: copies,
            mismatches: errors,
        };
        FiguresRecord {
            shadow: Some(ShadowRecord::new(&counts, (100, 105))),
            ..window(gateway, "p1", started, 100, (0, 0))
        }
    }

    #[test]
    fn the_shadow_tallies_are_summed_as_counts_and_buckets() {
        let p = Plan {
            shadow: Some({
                let mut stage = crate::rollout::shadow::Shadow::for_tests(100_000, 1000, 30);
                stage.gates.latency_percentile = 90.0;
                stage
            }),
            ..plan()
        };
        // gw1: 20 fast copies; gw2: 20 copies, 8 slow and 2 failed; gw3's is of another step.
        let windows = [
            shadowed("gw1", 7000, 20, 20, 0),
            shadowed("gw2", 7000, 20, 12, 2),
            shadowed("gw3", 6000, 500, 0, 500),
        ];
        let s = sum(&p, 7000, &windows);
        let a = &s.shadow.answers;
        assert_eq!((a.requests, a.errors), (40, 2));
        assert_eq!((s.shadow.compared, s.shadow.mismatches), (40, 2));
        // p90 of the summed buckets: 32 fast of 40, so the 36th answer is a slow one; each
        // gateway's own p90 (5 ms and 1000 ms) averaged would say neither.
        assert_eq!(a.latency_ms(90.0), Some(1000));
        assert_eq!(a.latency_ms(80.0), Some(5));
        let parts: Vec<(u64, Option<u64>)> = (s.gateways.iter())
            .filter_map(|g| g.shadow.as_ref())
            .map(|f| (f.copies, f.latency_ms))
            .collect();
        assert_eq!(parts, [(20, Some(5)), (20, Some(1000))]);
        // Without a stage in the plan, a tally is not summed.
        assert_eq!(sum(&plan(), 7000, &windows).shadow, ShadowCounts::default());
    }

    #[test]
    fn the_window_starts_with_the_step() {
        let p = plan();
        assert_eq!(span(&p, 0, 1000), (995, 1000));
        assert_eq!(span(&p, 998_500, 1000), (998, 1000));
    }
}
