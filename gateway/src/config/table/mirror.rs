//! `routes[i].mirror`: shadow traffic, as serde structs mirroring the file, and its checks on
//! their own (`validate_mirror`: the share, the group named, duplicates). Compiled by
//! `compile_mirror.rs`; sent by `crate::mirror`.

use super::model::RouteConfig;
use crate::config::error::Issue;
use crate::config::range::{Bound, Count, Millis, Ranged};
use schemars::JsonSchema;
use serde::Deserialize;

/// `percent`: from one request in 100,000 to every request.
pub const PERCENT_BOUND: Bound<f64> = Bound::number(0.001, 100.0);
/// Largest `max_body_bytes` (16 MiB): each mirrored request holds its body in memory.
pub const MAX_BODY_BYTES: u64 = 16 << 20;
/// Largest `max_in_flight` of a mirror.
pub const MAX_IN_FLIGHT: u64 = 100_000;

/// `routes[i].mirror[j]`: a share of the route's requests copied to another group, whose
/// answers are thrown away (and compared with the client's, with `compare`).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The group the copies go to (a group of `upstreams`).
    pub upstream: String,
    /// Share of the route's requests (of the methods mirrored) copied, in percent from 0.001
    /// to 100; sampled by a counter, so 10 of every 100 requests exactly.
    #[schemars(range(min = 0.001, max = 100.0))]
    pub percent: f64,
    /// Request bodies up to this size are copied byte for byte; a larger one is not mirrored
    /// (counted as `too_large`) [65536].
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: Ranged<0, MAX_BODY_BYTES>,
    /// Mirrored requests of this route in flight at once; past it a copy is dropped (counted
    /// as `dropped`) [256].
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: Count<MAX_IN_FLIGHT>,
    /// A mirrored request's whole time: connect, request and answer [2000].
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: Millis,
    /// Methods mirrored [GET, HEAD, OPTIONS: the safe ones, which a copy cannot repeat a
    /// write with].
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Compare the shadow's answer with the client's; absent = copies are only sent.
    #[serde(default)]
    pub compare: Option<CompareConfig>,
}

impl MirrorConfig {
    /// What stands in for an entry that failed to decode (`by_field.rs`).
    pub fn placeholder() -> Self {
        MirrorConfig {
            upstream: String::new(),
            percent: 100.0,
            max_body_bytes: default_max_body_bytes(),
            max_in_flight: default_max_in_flight(),
            timeout_ms: default_timeout_ms(),
            methods: None,
            compare: None,
        }
    }
}

fn default_max_body_bytes() -> Ranged<0, MAX_BODY_BYTES> {
    Ranged(65_536)
}

fn default_max_in_flight() -> Count<MAX_IN_FLIGHT> {
    Ranged(256)
}

fn default_timeout_ms() -> Millis {
    Millis(2_000)
}

/// `routes[i].mirror[j].compare`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    /// Compare the statuses [true].
    #[serde(default = "yes")]
    pub status: bool,
    /// `hash`: compare the bodies by a hash computed as they stream (bodies past
    /// `max_body_bytes` by length only); `ignore`: not at all [hash].
    #[serde(default)]
    pub body: BodyCompareConfig,
    /// Compare the response headers by name and value [true]; `false`: statuses and bodies
    /// only (the versions send different `server` or version headers by design).
    #[serde(default = "yes")]
    pub headers: bool,
    /// Response headers left out of the comparison (every other header is compared by name
    /// and value; hop-by-hop headers never are).
    #[serde(default)]
    pub ignore_headers: Vec<String>,
    /// A stable group (a group of `upstreams`) that gets a second copy of each compared
    /// request: a body or header difference it shows against the real answer too (timestamps,
    /// ids) is noise, recorded as `match` and counted as `noise` in `/mirrors` [none].
    #[serde(default)]
    pub baseline: Option<String>,
}

fn yes() -> bool {
    true
}

/// How bodies are compared.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BodyCompareConfig {
    /// A hash of each body, computed as it streams.
    #[default]
    Hash,
    /// Not compared.
    Ignore,
}

/// The checks of a route's mirrors on their own (the group's existence is a reference, checked
/// with the others); `path` is `routes[i]`.
pub fn validate_mirror(route: &RouteConfig, path: &str, issues: &mut Vec<Issue>) {
    for (j, m) in route.mirror.iter().enumerate() {
        let at = |field: &str| format!("{path}.mirror[{j}].{field}");
        PERCENT_BOUND.check(at("percent"), m.percent, issues);
        if let Some(first) = route.mirror[..j]
            .iter()
            .position(|o| o.upstream == m.upstream)
        {
            issues.push(Issue::new(
                at("upstream"),
                format!(
                    "found upstream {:?} twice in this route's mirrors (also mirror[{first}]), expected each group once",
                    m.upstream
                ),
            ));
        }
        if let Some(b) = m.compare.as_ref().and_then(|c| c.baseline.as_ref()) {
            if *b == m.upstream {
                issues.push(Issue::new(
                    at("compare.baseline"),
                    format!(
                        "found {b:?}, the mirrored group itself, expected another (stable) group"
                    ),
                ));
            }
        }
        if matches!(&m.methods, Some(list) if list.is_empty()) {
            issues.push(Issue::new(
                at("methods"),
                "found an empty list, expected at least one method (omit the field for GET, HEAD, OPTIONS)",
            ));
        }
    }
}
