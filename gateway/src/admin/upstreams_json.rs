//! `GET /upstreams`: every group of the running table and every target with its health
//! (healthy, unhealthy, ejected and until when), last check, load and failures.

use crate::health::{HealthRegistry, LastCheck};
use crate::routing::{CheckKind, RouteTable};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// A registry time as wall-clock RFC 3339.
fn wall(registry: &HealthRegistry, at_ms: u64) -> String {
    let delta = registry.ms_from_now(at_ms);
    let now = SystemTime::now();
    let t = if delta >= 0 {
        now + Duration::from_millis(delta as u64)
    } else {
        now - Duration::from_millis(delta.unsigned_abs())
    };
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn upstreams_json(table: &RouteTable, registry: &HealthRegistry) -> Value {
    let now = registry.now_ms();
    let groups: Vec<Value> = table
        .groups()
        .iter()
        .map(|g| {
            let targets: Vec<Value> = g
                .targets
                .iter()
                .map(|t| {
                    let s = registry.get(t.addr);
                    let ejected = s.as_ref().and_then(|s| s.ejected_until()).filter(|u| *u > now);
                    let healthy = s.as_ref().is_none_or(|s| s.checks_healthy());
                    let state = match (ejected, healthy) {
                        (Some(_), _) => "ejected",
                        (None, false) => "unhealthy",
                        (None, true) => "healthy",
                    };
                    let last_check = s.as_ref().and_then(|s| match s.last_check() {
                        (LastCheck::None, _) => None,
                        (r, at) => Some(json!({
                            "result": if r == LastCheck::Success { "success" } else { "failure" },
                            "at": wall(registry, at),
                        })),
                    });
                    json!({
                        "addr": t.addr.to_string(),
                        "weight": t.weight,
                        "state": state,
                        "ejected_until": ejected.map(|u| wall(registry, u)),
                        "last_check": last_check,
                        "in_flight": s.as_ref().map_or(0, |s| s.in_flight.load(std::sync::atomic::Ordering::Relaxed)),
                        "consecutive_failures": s.as_ref().map_or(0, |s| s.consecutive_failures()),
                        "failures": s.as_ref().map_or(0, |s| s.failures.load(std::sync::atomic::Ordering::Relaxed)),
                    })
                })
                .collect();
            json!({
                "name": g.name.as_ref(),
                "health_check": g.policy.health.as_ref().map(|h| match &h.kind {
                    CheckKind::Tcp => json!({ "tcp": true, "interval_ms": h.interval.as_millis() as u64 }),
                    CheckKind::Http { path, .. } => json!({ "http": path, "interval_ms": h.interval.as_millis() as u64 }),
                }),
                "outlier": g.policy.outlier.is_some(),
                "max_in_flight": g.policy.max_in_flight,
                "in_flight": registry.group_in_flight(&g.name),
                "targets": targets,
            })
        })
        .collect();
    json!({ "groups": groups })
}
