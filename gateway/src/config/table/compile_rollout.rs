//! The rollouts of a decoded, valid table compiled into their plans (the type the rollout
//! controller runs, `crate::rollout::plan::Plan`): what a source hands the controller, so that
//! it never reads the configuration model itself.

use super::model::{RouteConfig, RoutesConfig};
use super::rollout::{RolloutConfig, DEFAULT_MIN_REQUESTS, DEFAULT_PERCENTILE};
use super::rollout_hooks::{
    HooksConfig, PrometheusGateConfig, DEFAULT_CONFIRM_TIMEOUT_MS, DEFAULT_PROM_INTERVAL_MS,
};
use crate::rollout::hooks::{ConfirmStep, EventsHook, HookUrl, Hooks};
use crate::rollout::plan::{Gates, Plan};
use crate::rollout::prometheus::PromGate;
use crate::rollout::shadow::{Shadow, ShadowGates};
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
            prometheus: g.prometheus.iter().filter_map(prom_gate).collect(),
        },
        on_failure: r.on_failure,
        shadow: r.shadow.as_ref().map(shadow),
        hooks: hooks(&r.hooks),
        fingerprint: sha256_hex(fingerprint_text(route, r).as_bytes()),
        groups,
    })
}

/// The shadow stage: judged over the whole stage, its last five minutes at most (what the tally
/// keeps).
fn shadow(s: &super::rollout_shadow::ShadowConfig) -> Shadow {
    let g = &s.gates;
    Shadow {
        share: super::compile_mirror::share(s.percent),
        duration_ms: s.duration_ms.0,
        gates: ShadowGates {
            window_ms: s.duration_ms.0.min(crate::rollout::shadow::MAX_WINDOW_MS),
            min_requests: g.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS),
            max_error_rate: g.max_error_rate,
            max_latency_ms: g.max_latency_ms.map(|m| m.0),
            latency_percentile: g.latency_percentile.unwrap_or(DEFAULT_PERCENTILE),
            max_mismatch_rate: g.max_mismatch_rate,
        },
    }
}

/// A valid URL (validation checked it: `None` never drops anything).
fn url(text: &str) -> Option<HookUrl> {
    let u = HookUrl::parse(text).ok();
    debug_assert!(u.is_some(), "validated URL {text:?}");
    u
}

fn hooks(h: &HooksConfig) -> Hooks {
    Hooks {
        confirm_step: h.confirm_step.as_ref().and_then(|c| {
            Some(ConfirmStep {
                url: url(&c.url)?,
                timeout_ms: c.timeout_ms.unwrap_or(DEFAULT_CONFIRM_TIMEOUT_MS),
            })
        }),
        events: h.events.as_ref().and_then(|e| {
            Some(EventsHook {
                url: url(&e.url)?,
                secret_file: e.secret_file.as_ref().map(Into::into),
            })
        }),
    }
}

fn prom_gate(g: &PrometheusGateConfig) -> Option<PromGate> {
    Some(PromGate {
        name: g.name.clone(),
        url: url(&g.url)?,
        query: g.query.clone(),
        max: g.max,
        min: g.min,
        interval_ms: g.interval_ms.unwrap_or(DEFAULT_PROM_INTERVAL_MS),
        on_error: g.on_error,
    })
}

/// What the fingerprint hashes: the route's split and its rollout but the hooks (an edit of a
/// hook keeps the rollout on its step), written as versions without hooks and Prometheus gates
/// wrote it (the `Debug` form of the same fields), so that a rollout without them keeps its
/// fingerprint across an upgrade to this version; Prometheus gates and the shadow stage are
/// appended.
fn fingerprint_text(route: &RouteConfig, r: &RolloutConfig) -> String {
    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug only
    struct RolloutConfig<'a> {
        canary: &'a String,
        steps: &'a Vec<super::rollout::Step>,
        step_ms: &'a crate::config::range::Millis,
        pause_before: &'a Vec<crate::config::range::Percent>,
        gates: GatesConfig<'a>,
        on_failure: &'a crate::rollout::plan::OnFailure,
    }
    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug only
    struct GatesConfig<'a> {
        window_ms: &'a Option<u64>,
        min_requests: &'a Option<u64>,
        max_error_rate: &'a Option<f64>,
        max_latency_ms: &'a Option<crate::config::range::Millis>,
        latency_percentile: &'a Option<f64>,
        max_latency_ratio: &'a Option<f64>,
    }
    let g = &r.gates;
    let before = RolloutConfig {
        canary: &r.canary,
        steps: &r.steps,
        step_ms: &r.step_ms,
        pause_before: &r.pause_before,
        gates: GatesConfig {
            window_ms: &g.window_ms,
            min_requests: &g.min_requests,
            max_error_rate: &g.max_error_rate,
            max_latency_ms: &g.max_latency_ms,
            latency_percentile: &g.latency_percentile,
            max_latency_ratio: &g.max_latency_ratio,
        },
        on_failure: &r.on_failure,
    };
    let mut text = format!("{:?}\n{before:?}", route.split);
    if !g.prometheus.is_empty() {
        text.push_str(&format!("\n{:?}", g.prometheus));
    }
    if let Some(s) = &r.shadow {
        text.push_str(&format!("\nshadow {s:?}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_of_a_rollout_without_the_new_fields_is_what_it_was() {
        // What versions before hooks and Prometheus gates hashed: the Debug form of the route's
        // split and of its rollout, for this text.
        let text = "upstreams:\n  stable: { targets: [\"127.0.0.1:9001\"] }\n  canary: { targets: [\"127.0.0.1:9002\"] }\nroutes:\n  - name: shop\n    split:\n      - { upstream: stable, weight: 100 }\n      - { upstream: canary, weight: 0 }\n    rollout: { canary: canary, steps: [10, 100], step_ms: 1000, pause_before: [100], gates: { max_error_rate: 0.05, max_latency_ms: 300 } }\n";
        let loaded = crate::config::routes_from_text("routes.yaml", text.as_bytes().to_vec(), None)
            .expect("valid");
        let route = loaded.model.routes[0].clone().expect("route");
        let r = route.rollout.as_ref().expect("rollout");
        let old = format!(
            "{:?}\nRolloutConfig {{ canary: \"canary\", steps: [Step(10), Step(100)], step_ms: Millis(1000), pause_before: [Percent(100)], gates: GatesConfig {{ window_ms: None, min_requests: None, max_error_rate: Some(0.05), max_latency_ms: Some(Millis(300)), latency_percentile: None, max_latency_ratio: None }}, on_failure: Rollback }}",
            route.split
        );
        assert_eq!(fingerprint_text(&route, r), old);
        let plan = plan_of(&route).expect("plan");
        assert_eq!(plan.fingerprint, sha256_hex(old.as_bytes()));
    }
}
