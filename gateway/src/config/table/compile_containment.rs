//! The containment sections of routes.yaml to their typed form (`routing::policy`). Values were
//! range-checked when decoded (`containment.rs`); what is left is defaults and cross-field checks.

use super::containment::{HealthConfig, RetriesConfig, RetryOnConfig, TimeoutsConfig};
use super::model::{UnhealthyTagPolicy, UpstreamConfig};
use crate::config::error::Issue;
use crate::routing::{
    CheckKind, GroupPolicy, HealthCheck, Outlier, Retries, RetryOn, RetryReason, Timeouts,
    UnhealthyTag,
};
use std::time::Duration;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `routes[i].timeouts`.
pub fn timeouts(cfg: &TimeoutsConfig) -> Timeouts {
    let d = Timeouts::default();
    Timeouts {
        connect: cfg.connect_ms.map(|m| ms(m.0)),
        read: match cfg.read_ms {
            None => d.read,
            Some(m) if m.0 == 0 => None,
            Some(m) => Some(ms(m.0)),
        },
        write: cfg.write_ms.map_or(d.write, |m| ms(m.0)),
        total: cfg.total_ms.map(|m| ms(m.0)),
        stream_idle: cfg.stream_idle_ms.map_or(d.stream_idle, |m| ms(m.0)),
    }
}

/// `routes[i].retries`.
pub fn retries(cfg: &RetriesConfig) -> Retries {
    let on = cfg.on.iter().fold(RetryOn::default(), |set, on| {
        set.with(match on {
            RetryOnConfig::ConnectFailure => RetryReason::ConnectFailure,
            RetryOnConfig::Reset => RetryReason::Reset,
            RetryOnConfig::Timeout => RetryReason::Timeout,
            RetryOnConfig::Status(s) => {
                // Decoding accepts only the statuses `for_status` knows.
                RetryReason::for_status(*s).unwrap_or(RetryReason::Status502)
            }
        })
    });
    Retries {
        attempts: cfg.attempts.0 as u8,
        on,
        budget_percent: cfg.budget_percent.0,
    }
}

/// `routes[i].dye.on_unhealthy_tag`.
pub fn unhealthy_tag(p: UnhealthyTagPolicy) -> UnhealthyTag {
    match p {
        UnhealthyTagPolicy::Base => UnhealthyTag::Base,
        UnhealthyTagPolicy::Reject => UnhealthyTag::Reject,
    }
}

/// `upstreams.NAME.{health, outlier, max_in_flight}`; issues under `path` (`upstreams.NAME`).
pub fn group_policy(
    up: &UpstreamConfig,
    path: &dyn Fn() -> String,
    issues: &mut Vec<Issue>,
) -> GroupPolicy {
    GroupPolicy {
        health: up
            .health
            .as_ref()
            .and_then(|h| health(h, &|| format!("{}.health", path()), issues)),
        outlier: up.outlier.as_ref().map(|o| Outlier {
            consecutive_failures: o.consecutive_failures.map_or(5, |c| c.0 as u32),
            eject: o.eject_ms.map_or(ms(10_000), |m| ms(m.0)),
            max_ejected_percent: o.max_ejected_percent.map_or(50, |p| p.0),
        }),
        max_in_flight: up.max_in_flight.map(|m| m.0 as u32),
    }
}

fn health(
    cfg: &HealthConfig,
    path: &dyn Fn() -> String,
    issues: &mut Vec<Issue>,
) -> Option<HealthCheck> {
    let interval = cfg.interval_ms.map_or(ms(1000), |m| ms(m.0));
    // A check that outlasts the interval delays the next one (one in flight per target);
    // unset, the timeout stays within a short interval.
    let timeout = cfg.timeout_ms.map_or(ms(500).min(interval), |m| ms(m.0));
    let kind = match (&cfg.http, cfg.tcp) {
        (Some(_), Some(true)) => {
            issues.push(Issue::new(
                format!("{}.tcp", path()),
                "found both `http` and `tcp: true`, expected one kind of check",
            ));
            return None;
        }
        (None, Some(true)) => CheckKind::Tcp,
        (None, Some(false)) => {
            issues.push(Issue::new(
                format!("{}.tcp", path()),
                "found false, expected `tcp: true` or an `http` check",
            ));
            return None;
        }
        (None, None) => {
            issues.push(Issue::new(
                path(),
                "found no kind of check, expected `http: { path: /healthz }` or `tcp: true`",
            ));
            return None;
        }
        (Some(http), _) => {
            let before = issues.len();
            let valid_path =
                http.path.starts_with('/') && http.path.parse::<http::uri::PathAndQuery>().is_ok();
            if !valid_path {
                issues.push(Issue::new(
                    format!("{}.http.path", path()),
                    format!(
                        "found {:?}, expected a path starting with / such as /healthz",
                        http.path
                    ),
                ));
            }
            if let Some(host) = &http.host {
                if host.is_empty() || http::HeaderValue::from_str(host).is_err() {
                    issues.push(Issue::new(
                        format!("{}.http.host", path()),
                        format!("found {host:?}, expected a host name such as shop.internal"),
                    ));
                }
            }
            if issues.len() > before {
                return None;
            }
            CheckKind::Http {
                path: http.path.clone(),
                host: http.host.clone(),
                expect: (http.expect.iter().flatten()).map(|s| s.0 as u16).collect(),
            }
        }
    };
    Some(HealthCheck {
        kind,
        interval,
        timeout,
        unhealthy_after: cfg.unhealthy_after.map_or(2, |c| c.0 as u32),
        healthy_after: cfg.healthy_after.map_or(2, |c| c.0 as u32),
    })
}
