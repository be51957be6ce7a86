//! `GET /upstreams`: every group of the running table and every target with its health
//! (healthy, unhealthy, ejected and until when), last check, load and failures; for a group
//! with DNS names, each name with its addresses, last answer and last failure, and the
//! addresses a name no longer gives that still have requests in flight (`draining`).

use crate::dns::names::rfc3339;
use crate::dns::DnsNames;
use crate::health::{HealthRegistry, LastCheck};
use crate::routing::{AddressBook, CheckKind, Group, RouteTable, Target};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
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

/// The addresses of the running table's DNS names, and what is known of each name.
pub struct Resolved<'a> {
    pub book: &'a AddressBook,
    pub names: Option<&'a DnsNames>,
}

pub fn upstreams_json(table: &RouteTable, registry: &HealthRegistry, dns: Resolved<'_>) -> Value {
    let addresses = dns.book.load_full();
    let groups: Vec<Value> = table
        .groups()
        .iter()
        .map(|g| {
            let members = g.members(&addresses);
            let mut targets: Vec<Value> = (members.targets().iter())
                .map(|t| target_json(registry, t, None))
                .collect();
            let names = names_json(g, dns.names);
            for (addr, host) in draining(g, dns.names, members.targets(), registry) {
                let t = Target {
                    addr,
                    weight: 0,
                    host: Some(host),
                };
                targets.push(target_json(registry, &t, Some("draining")));
            }
            let mut j = json!({
                "name": g.name.as_ref(),
                "health_check": g.policy.health.as_ref().map(|h| match &h.kind {
                    CheckKind::Tcp => json!({ "tcp": true, "interval_ms": h.interval.as_millis() as u64 }),
                    CheckKind::Http { path, .. } => json!({ "http": path, "interval_ms": h.interval.as_millis() as u64 }),
                }),
                "outlier": g.policy.outlier.is_some(),
                "max_in_flight": g.policy.max_in_flight,
                "in_flight": registry.group_in_flight(&g.name),
                "targets": targets,
            });
            if g.is_resolved() {
                j["names"] = json!(names);
            }
            j
        })
        .collect();
    json!({ "groups": groups })
}

/// One target: its health, last check, load and failures (`state` given: a draining one).
fn target_json(registry: &HealthRegistry, t: &Target, state: Option<&str>) -> Value {
    let now = registry.now_ms();
    let s = registry.get(t.addr);
    let ejected = s
        .as_ref()
        .and_then(|s| s.ejected_until())
        .filter(|u| *u > now);
    let healthy = s.as_ref().is_none_or(|s| s.checks_healthy());
    let state = state.unwrap_or(match (ejected, healthy) {
        (Some(_), _) => "ejected",
        (None, false) => "unhealthy",
        (None, true) => "healthy",
    });
    let last_check = s.as_ref().and_then(|s| match s.last_check() {
        (LastCheck::None, _) => None,
        (r, at) => Some(json!({
            "result": if r == LastCheck::Success { "success" } else { "failure" },
            "at": wall(registry, at),
        })),
    });
    let mut j = json!({
        "addr": t.addr.to_string(),
        "weight": t.weight,
        "state": state,
        "ejected_until": ejected.map(|u| wall(registry, u)),
        "last_check": last_check,
        "in_flight": s.as_ref().map_or(0, |s| s.in_flight.load(Ordering::Relaxed)),
        "consecutive_failures": s.as_ref().map_or(0, |s| s.consecutive_failures()),
        "failures": s.as_ref().map_or(0, |s| s.failures.load(Ordering::Relaxed)),
    });
    if let Some(host) = &t.host {
        j["name"] = json!(host.as_ref());
    }
    j
}

/// The group's `NAME:PORT` entries with what is known of each name.
fn names_json(g: &Group, names: Option<&DnsNames>) -> Vec<Value> {
    (g.names())
        .map(|n| {
            let v = names.and_then(|d| d.get(&n.host));
            let addrs: Vec<String> = (v.iter())
                .flat_map(|v| v.addrs.iter())
                .map(|ip| SocketAddr::new(*ip, n.port).to_string())
                .collect();
            json!({
                "name": n.host.as_ref(),
                "port": n.port,
                "weight": n.weight,
                "addresses": addrs,
                "last_resolve": v.as_ref().and_then(|v| v.resolved_at).map(rfc3339),
                "last_error": v.as_ref().and_then(|v| v.last_error.as_ref()).map(|(e, at)| json!({
                    "error": e,
                    "at": rfc3339(*at),
                })),
                "failures_in_a_row": v.as_ref().map_or(0, |v| v.failures),
            })
        })
        .collect()
}

/// Addresses the last change of the group's names removed that still have attempts in flight.
fn draining(
    g: &Group,
    names: Option<&DnsNames>,
    members: &[Target],
    registry: &HealthRegistry,
) -> Vec<(SocketAddr, std::sync::Arc<str>)> {
    let mut out: Vec<(SocketAddr, std::sync::Arc<str>)> = Vec::new();
    for n in g.names() {
        let Some(v) = names.and_then(|d| d.get(&n.host)) else {
            continue;
        };
        for ip in &v.removed {
            let addr = SocketAddr::new(*ip, n.port);
            let busy = registry
                .get(addr)
                .is_some_and(|s| s.in_flight.load(Ordering::Relaxed) > 0);
            if busy
                && !members.iter().any(|t| t.addr == addr)
                && !out.iter().any(|(a, _)| *a == addr)
            {
                out.push((addr, n.host.clone()));
            }
        }
    }
    out
}
