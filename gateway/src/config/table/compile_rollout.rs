//! The rollouts of a decoded, valid table compiled into their plans (the type the rollout
//! controller runs, `crate::rollout::plan::Plan`): what a source hands the controller, so that
//! it never reads the configuration model itself.

use super::model::{RouteConfig, RoutesConfig};
use super::rollout::{DEFAULT_MIN_REQUESTS, DEFAULT_PERCENTILE};
use crate::rollout::plan::{Gates, Plan};
use crate::stamp::sha256_hex;

/// The plans of a table, by route.
pub use crate::rollout::plan::Plans;

/// The plan of every route of `model` that has a rollout.
pub fn plans(model: &RoutesConfig) -> Plans {
    (model.routes.iter().flatten())
        .filter_map(|r| plan_of(r))
        .map(|p| (p.route.clone(), p))
        .collect()
}

/// The plan of a valid route, `None` when it has no rollout.
pub fn plan_of(route: &RouteConfig) -> Option<Plan> {
    let r = route.rollout.as_ref()?;
    let groups: Vec<String> = route.split.iter().map(|e| e.upstream.clone()).collect();
    let canary = groups.iter().position(|g| *g == r.canary)?;
    let g = &r.gates;
    Some(Plan {
        route: route.name.clone(),
        base: route.split.iter().map(|e| e.weight.0).collect(),
        canary,
        steps: r.steps.iter().map(|s| s.0).collect(),
        step_ms: r.step_ms.0,
        pause_before: r.pause_before.iter().map(|s| s.0).collect(),
        gates: Gates {
            window_ms: g.window_ms.unwrap_or(r.step_ms.0),
            min_requests: g.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS),
            max_error_rate: g.max_error_rate,
            max_latency_ms: g.max_latency_ms.map(|m| m.0),
            latency_percentile: g.latency_percentile.unwrap_or(DEFAULT_PERCENTILE),
            max_latency_ratio: g.max_latency_ratio,
        },
        on_failure: r.on_failure,
        fingerprint: sha256_hex(format!("{:?}\n{:?}", route.split, r).as_bytes()),
        groups,
    })
}
