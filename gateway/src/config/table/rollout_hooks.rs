//! `routes[i].rollout.hooks` (a confirmation webhook, an events webhook) and
//! `routes[i].rollout.gates.prometheus` (queries against a Prometheus HTTP API), as serde
//! structs mirroring the file, and their checks: URLs `http://` or `https://` with a host,
//! secrets only from files (an absolute path, read at load), unique gate names.

use crate::config::error::Issue;
use crate::config::range::Bound;
use crate::rollout::hooks::HookUrl;
use schemars::JsonSchema;
use serde::Deserialize;

/// `hooks.confirm_step.timeout_ms`.
pub const CONFIRM_TIMEOUT_BOUND: Bound<u64> = Bound::millis(1, 60_000);
pub const DEFAULT_CONFIRM_TIMEOUT_MS: u64 = 2_000;
/// `gates.prometheus[j].interval_ms`.
pub const PROM_INTERVAL_BOUND: Bound<u64> = Bound::millis(100, 3_600_000);
pub const DEFAULT_PROM_INTERVAL_MS: u64 = 10_000;

/// `routes[i].rollout.hooks`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Asked before each automatic promotion (POST of the rollout's status JSON): a 2xx lets
    /// the step go; anything else, or no answer within `timeout_ms`, keeps the rollout in
    /// `awaiting_confirmation`, asked again every `step_ms`/10 (1 s to 60 s). Never asked
    /// before an abort or a pause, nor by `dyegate rollout promote`.
    #[serde(default)]
    pub confirm_step: Option<ConfirmStepConfig>,
    /// Every transition POSTed as a CloudEvents 1.0 JSON envelope, in order, from a bounded
    /// queue with retries; signed (`X-Dyegate-Signature: t=UNIX,v1=HEX`) when `secret_file` is set.
    #[serde(default)]
    pub events: Option<EventsConfig>,
}

/// `routes[i].rollout.hooks.confirm_step`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfirmStepConfig {
    /// http:// or https:// URL.
    pub url: String,
    /// How long an answer may take; later counts as "wait" [2000].
    #[serde(default)]
    #[schemars(range(min = CONFIRM_TIMEOUT_BOUND.min, max = CONFIRM_TIMEOUT_BOUND.max))]
    pub timeout_ms: Option<u64>,
}

/// `routes[i].rollout.hooks.events`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// http:// or https:// URL.
    pub url: String,
    /// Absolute path of a file holding the HMAC-SHA256 key (a final line break is not part of
    /// it); read at load and when an event is signed. Secrets are never written inline.
    #[serde(default)]
    pub secret_file: Option<String>,
}

/// `routes[i].rollout.gates.prometheus[j]`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusGateConfig {
    /// Names the gate in the status, events and `dyegate_rollout_gate_breaches_total`.
    pub name: String,
    /// Base URL of a Prometheus HTTP API (`/api/v1/query` is appended), http:// or https://.
    pub url: String,
    /// PromQL instant query whose result is a scalar or exactly one series.
    pub query: String,
    /// The value must be at most this (at least one of `max`, `min`).
    #[serde(default)]
    pub max: Option<f64>,
    /// The value must be at least this.
    #[serde(default)]
    pub min: Option<f64>,
    /// How often the query is evaluated [10000]; a step is promoted only on a value
    /// evaluated after it began.
    #[serde(default)]
    #[schemars(range(min = PROM_INTERVAL_BOUND.min, max = PROM_INTERVAL_BOUND.max))]
    pub interval_ms: Option<u64>,
    /// What an error, an empty or ambiguous result, or a timeout does: `pause` [default]
    /// (state paused until a resume), `fail` (as a breach), `ignore`.
    #[serde(default)]
    pub on_error: crate::rollout::prometheus::OnError,
}

/// The checks of `hooks`; `path` is `routes[i].rollout.hooks`.
pub fn validate_hooks(h: &HooksConfig, path: &str, issues: &mut Vec<Issue>) {
    if let Some(c) = &h.confirm_step {
        check_url(&c.url, format!("{path}.confirm_step.url"), issues);
        if let Some(t) = c.timeout_ms {
            CONFIRM_TIMEOUT_BOUND.check(format!("{path}.confirm_step.timeout_ms"), t, issues);
        }
    }
    if let Some(e) = &h.events {
        check_url(&e.url, format!("{path}.events.url"), issues);
        if let Some(file) = &e.secret_file {
            check_secret_file(file, format!("{path}.events.secret_file"), issues);
        }
    }
}

/// The gates' names on the gateway's own figures (the steps' and the shadow stage's).
const BUILT_IN_GATES: [&str; 6] = [
    "error_rate",
    "latency",
    "latency_ratio",
    "shadow_error_rate",
    "shadow_latency",
    "shadow_mismatch_rate",
];

/// The checks of `gates.prometheus`; `path` is `routes[i].rollout.gates.prometheus`.
pub fn validate_prometheus(gates: &[PrometheusGateConfig], path: &str, issues: &mut Vec<Issue>) {
    for (j, g) in gates.iter().enumerate() {
        let p = |f: &str| format!("{path}[{j}].{f}");
        let name_ok = (1..=64).contains(&g.name.len())
            && (g.name.bytes()).all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            issues.push(Issue::new(
                p("name"),
                format!(
                    "found {:?}, expected 1 to 64 characters of A-Z a-z 0-9 - _ .",
                    g.name
                ),
            ));
        } else if BUILT_IN_GATES.contains(&g.name.as_str()) {
            issues.push(Issue::new(
                p("name"),
                format!(
                    "found {:?}, the name of a built-in gate, expected another name",
                    g.name
                ),
            ));
        } else if gates[..j].iter().any(|o| o.name == g.name) {
            issues.push(Issue::new(
                p("name"),
                format!("found {:?} twice, expected unique gate names", g.name),
            ));
        }
        check_url(&g.url, p("url"), issues);
        if g.query.trim().is_empty() {
            issues.push(Issue::new(
                p("query"),
                "found an empty query, expected a PromQL instant query, e.g. sum(rate(errors_total[1m]))",
            ));
        }
        if let Some(i) = g.interval_ms {
            PROM_INTERVAL_BOUND.check(p("interval_ms"), i, issues);
        }
        for (field, v) in [("max", g.max), ("min", g.min)] {
            if v.is_some_and(|v| !v.is_finite()) {
                issues.push(Issue::new(
                    p(field),
                    format!("found {}, expected a finite number", v.unwrap_or_default()),
                ));
            }
        }
        match (g.max, g.min) {
            (None, None) => issues.push(Issue::new(
                format!("{path}[{j}]"),
                "found neither `max` nor `min`, expected at least one bound for the query's value",
            )),
            (Some(max), Some(min)) if min > max => issues.push(Issue::new(
                p("min"),
                format!("found {min} above max {max}, expected min <= max"),
            )),
            _ => {}
        }
    }
}

fn check_url(url: &str, path: String, issues: &mut Vec<Issue>) {
    if let Err(msg) = HookUrl::parse(url) {
        issues.push(Issue::new(path, msg));
    }
}

fn check_secret_file(file: &str, path: String, issues: &mut Vec<Issue>) {
    let p = std::path::Path::new(file);
    if !p.is_absolute() {
        issues.push(Issue::new(
            path,
            format!("found {file:?}, expected an absolute path (the routes may come from etcd, where no directory is theirs)"),
        ));
        return;
    }
    if let Err(e) = crate::rollout::hooks::sign::read_secret(p) {
        issues.push(Issue::new(
            path,
            format!("found {e}, expected a readable file holding the secret"),
        ));
    }
}
