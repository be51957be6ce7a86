//! The last 15 minutes of a rollout, one point a second, for the live view's charts: the
//! canary's and the other groups' error rate and latency percentile over the gates' window (the
//! figures the gates judge), with the step and state of that second. Kept in memory, bounded:
//! [`POINTS`] points of [`POINT_BYTES`] bytes per rollout, dropped with the rollout.

use super::judge::judge;
use super::plan::Plan;
use super::state::{Phase, RolloutState};
use crate::telemetry::window::Figures;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;

/// 15 minutes at one point a second.
pub const POINTS: usize = 900;
/// The size of one point in memory.
pub const POINT_BYTES: usize = std::mem::size_of::<Point>();
// The figure docs/live-view.md gives for a rollout's memory (48 x 900 = 43,200 bytes).
const _: () = assert!(POINT_BYTES <= 48);

/// One second of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Unix second.
    pub t: u64,
    /// Requests in the window: the canary's and the other groups'.
    pub canary_requests: u32,
    pub others_requests: u32,
    pub canary_error_rate: f32,
    pub others_error_rate: f32,
    /// At the gates' percentile (bucket upper bound), `None` without requests.
    pub canary_latency_ms: Option<f32>,
    pub others_latency_ms: Option<f32>,
    pub step: u16,
    pub state: Phase,
}

/// A change of step, or a move into a held or final state, drawn on the charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub t: u64,
    pub step: u16,
    pub state: Phase,
}

/// One rollout's points, oldest first, at most [`POINTS`].
#[derive(Debug, Default)]
pub struct Series {
    points: VecDeque<Point>,
}

impl Series {
    /// Adds a point; a second already sampled is replaced (a late tick), the oldest dropped.
    pub fn push(&mut self, p: Point) {
        if let Some(last) = self.points.back_mut() {
            if last.t == p.t {
                *last = p;
                return;
            }
        }
        if self.points.len() == POINTS {
            self.points.pop_front();
        }
        self.points.push_back(p);
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Every change of step, and every move into a held or final state (paused, awaiting
    /// approval, succeeded, failed, aborted), after the first point. Waiting for traffic and
    /// back is not marked: on a quiet route it comes and goes every few seconds.
    pub fn marks(&self) -> Vec<Mark> {
        let mut out = Vec::new();
        let mut prev: Option<&Point> = None;
        for p in &self.points {
            if let Some(q) = prev {
                let held = !matches!(p.state, Phase::Progressing | Phase::WaitingForTraffic);
                if q.step != p.step || (q.state != p.state && held) {
                    out.push(Mark {
                        t: p.t,
                        step: p.step,
                        state: p.state,
                    });
                }
            }
            prev = Some(p);
        }
        out
    }

    /// The points after second `since` (all without it), every mark and the gates' limits, as
    /// `GET /rollouts/ROUTE/series[?since=T]` answers: the page asks only for what it has not
    /// seen.
    pub fn json(&self, plan: Option<&Plan>, since: Option<u64>) -> Value {
        let limits = plan.map(|p| {
            json!({
                "max_error_rate": p.gates.max_error_rate,
                "max_latency_ms": p.gates.max_latency_ms,
                "max_latency_ratio": p.gates.max_latency_ratio,
                "latency_percentile": p.gates.latency_percentile,
                "window_ms": p.gates.window_ms,
            })
        });
        json!({
            "interval_ms": 1000,
            "capacity": POINTS,
            "points": (self.points.iter())
                .filter(|p| since.is_none_or(|s| p.t > s))
                .collect::<Vec<_>>(),
            "marks": self.marks(),
            "limits": limits,
            "steps": plan.map(|p| p.steps.clone()),
        })
    }
}

/// The point of second `t` from the window's figures per group (the plan's groups, in order).
pub fn point(plan: &Plan, state: &RolloutState, figures: &[(String, Figures)], t: u64) -> Point {
    let e = judge(&plan.gates, figures, plan.canary);
    let mut others = Figures::default();
    for (i, (_, f)) in figures.iter().enumerate() {
        if i != plan.canary {
            others.add(f);
        }
    }
    let canary = figures
        .get(plan.canary)
        .map(|(_, f)| f.clone())
        .unwrap_or_default();
    let q = e.latency_percentile;
    let ms = |f: &Figures| f.latency_ms(q).map(|l| l as f32);
    Point {
        t,
        canary_requests: u32::try_from(canary.requests).unwrap_or(u32::MAX),
        others_requests: u32::try_from(others.requests).unwrap_or(u32::MAX),
        canary_error_rate: canary.error_rate() as f32,
        others_error_rate: others.error_rate() as f32,
        canary_latency_ms: ms(&canary),
        others_latency_ms: ms(&others),
        step: u16::try_from(state.step).unwrap_or(u16::MAX),
        state: state.state,
    }
}

impl super::Controller {
    /// Adds this second's point to every rollout's series (this gateway's own window, as the
    /// gates judge it on one gateway); drops the series of routes that have no rollout any more.
    /// Called once a second by the live view's sampler.
    pub fn sample(&self) {
        let t = self.clock.now_second();
        let rollouts: Vec<(Plan, RolloutState)> = {
            let inner = self.lock();
            (inner.plans.iter())
                .filter_map(|(r, p)| Some((p.clone(), inner.states.get(r)?.clone())))
                .collect()
        };
        let points: Vec<(String, Point)> = (rollouts.iter())
            .map(|(plan, s)| {
                let figures = self.own_window(plan, s.step_started_ms, t);
                (plan.route.clone(), point(plan, s, &figures, t))
            })
            .collect();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.retain(|route, _| points.iter().any(|(r, _)| r == route));
        for (route, p) in points {
            series.entry(route).or_default().push(p);
        }
    }

    /// `GET /rollouts/ROUTE/series[?since=T]`: `None` when the route has no rollout.
    pub fn series_json(&self, route: &str, since: Option<u64>) -> Option<Value> {
        let plan = self.lock().plans.get(route).cloned()?;
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let empty = Series::default();
        let mut j = series.get(route).unwrap_or(&empty).json(Some(&plan), since);
        j["route"] = json!(route);
        j["canary"] = json!(plan.canary_group());
        Some(j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: u64, step: u16, state: Phase) -> Point {
        Point {
            t,
            canary_requests: 1,
            others_requests: 9,
            canary_error_rate: 0.0,
            others_error_rate: 0.0,
            canary_latency_ms: Some(5.0),
            others_latency_ms: None,
            step,
            state,
        }
    }

    #[test]
    fn bounded_to_fifteen_minutes_oldest_dropped() {
        let mut s = Series::default();
        for t in 0..(POINTS as u64 + 100) {
            s.push(at(t, 0, Phase::Progressing));
        }
        assert_eq!(s.len(), POINTS);
        assert_eq!(s.points.front().map(|p| p.t), Some(100));
        // A second sampled twice keeps one point, the latest.
        s.push(at(POINTS as u64 + 99, 1, Phase::Progressing));
        assert_eq!(s.len(), POINTS);
        assert_eq!(s.points.back().map(|p| p.step), Some(1));
        // Only what the page has not seen.
        let newer = s.json(None, Some(POINTS as u64 + 97));
        assert_eq!(newer["points"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn marks_each_step_and_abort() {
        let mut s = Series::default();
        s.push(at(1, 0, Phase::Progressing));
        s.push(at(2, 0, Phase::WaitingForTraffic));
        s.push(at(3, 1, Phase::Progressing));
        s.push(at(4, 1, Phase::Aborted));
        let marks = s.marks();
        assert_eq!(
            marks,
            vec![
                Mark {
                    t: 3,
                    step: 1,
                    state: Phase::Progressing
                },
                Mark {
                    t: 4,
                    step: 1,
                    state: Phase::Aborted
                }
            ]
        );
    }
}
