//! `routes[i].mirror` to [`Mirror`]s: the group looked up, the share in thousandths of a
//! percent, methods and header names parsed.

use super::mirror::{BodyCompareConfig, CompareConfig, MirrorConfig};
use super::model::RouteConfig;
use crate::config::error::Issue;
use crate::routing::{default_methods, Compare, Mirror, ShadowMirror, FULL_SHARE};
use foldhash::HashMap;
use http::{HeaderName, Method};
use std::time::Duration;

/// The route's mirrors; problems go to `issues` (located by `path`, `routes[i]`). An unknown
/// group was reported by validation and is left out here.
pub fn mirrors(
    cfg: &[MirrorConfig],
    path: &str,
    group_ids: &HashMap<&str, usize>,
    issues: &mut Vec<Issue>,
) -> Vec<Mirror> {
    let mut out = Vec::with_capacity(cfg.len());
    for (j, m) in cfg.iter().enumerate() {
        let at = format!("{path}.mirror[{j}]");
        let Some(&group) = group_ids.get(m.upstream.as_str()) else {
            continue;
        };
        let methods = match &m.methods {
            None => default_methods(),
            Some(list) => methods(list, &at, issues),
        };
        let compare = m
            .compare
            .as_ref()
            .map(|c| compare(c, &at, group_ids, issues));
        out.push(Mirror::new(
            group,
            share(m.percent),
            m.max_body_bytes.0,
            u32::try_from(m.max_in_flight.0).unwrap_or(u32::MAX),
            Duration::from_millis(m.timeout_ms.0),
            methods,
            compare,
        ));
    }
    out
}

/// A valid `percent` (0.001 to 100) in thousandths of a percent: 1 to [`FULL_SHARE`].
pub fn share(percent: f64) -> u32 {
    (percent * 1000.0).round().clamp(1.0, f64::from(FULL_SHARE)) as u32
}

/// `route` with a rollout's shadow stage set over it (see [`ShadowMirror`]): its `mirror` entry
/// to the stage's group takes the stage's share, every other setting as written; without such
/// an entry, one with the defaults is added, comparing statuses and bodies.
pub fn with_shadow(route: &RouteConfig, shadow: &ShadowMirror) -> RouteConfig {
    let mut r = route.clone();
    let percent = f64::from(shadow.share) / 1000.0;
    match r.mirror.iter_mut().find(|m| m.upstream == shadow.group) {
        Some(m) => m.percent = percent,
        None => r.mirror.push(MirrorConfig {
            upstream: shadow.group.clone(),
            percent,
            compare: Some(stage_compare()),
            ..MirrorConfig::placeholder()
        }),
    }
    r
}

/// What the entry a shadow stage adds compares, so that its `max_mismatch_rate` has copies to
/// judge: statuses and body hashes, not headers (a canary sends its own version or `server`
/// headers by design; a route's own mirror entry to the canary, with `compare`, is used as it
/// is). (Sending copies does not read it; the comparison of answers does, `crate::mirror`.)
fn stage_compare() -> CompareConfig {
    CompareConfig {
        status: true,
        body: BodyCompareConfig::Hash,
        headers: false,
        ignore_headers: Vec::new(),
        baseline: None,
    }
}

fn methods(list: &[String], at: &str, issues: &mut Vec<Issue>) -> Vec<Method> {
    let mut out = Vec::with_capacity(list.len());
    for (k, name) in list.iter().enumerate() {
        let upper = name.trim().to_ascii_uppercase();
        match Method::from_bytes(upper.as_bytes()) {
            Ok(m) if !upper.is_empty() => out.push(m),
            _ => issues.push(Issue::new(
                format!("{at}.methods[{k}]"),
                format!("found {name:?}, expected an HTTP method such as GET or PUT"),
            )),
        }
    }
    out
}

fn compare(
    c: &CompareConfig,
    at: &str,
    group_ids: &HashMap<&str, usize>,
    issues: &mut Vec<Issue>,
) -> Compare {
    let mut ignore_headers = Vec::with_capacity(c.ignore_headers.len());
    for (k, name) in c.ignore_headers.iter().enumerate() {
        match HeaderName::from_bytes(name.trim().as_bytes()) {
            Ok(h) => ignore_headers.push(h),
            Err(_) => issues.push(Issue::new(
                format!("{at}.compare.ignore_headers[{k}]"),
                format!("found {name:?}, expected a valid HTTP header name such as date"),
            )),
        }
    }
    Compare {
        status: c.status,
        body: c.body == BodyCompareConfig::Hash,
        headers: c.headers,
        ignore_headers,
        // An unknown group was reported by validation.
        baseline: (c.baseline.as_deref()).and_then(|b| group_ids.get(b).copied()),
    }
}
