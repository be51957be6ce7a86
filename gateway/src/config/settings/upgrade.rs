//! gateway.yaml's `upgrade:` how the old process watches the new one after `dyegate upgrade`
//! handed the sockets over, and when it takes them back. Read by the old process when the
//! upgrade starts (SIGQUIT), from gateway.yaml as it is then; a file it cannot read leaves the
//! settings it runs with.

use crate::config::error::Issue;
use crate::config::range::Ranged;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

/// Longest watch: ten minutes of an old process kept alive.
pub const MAX_WATCH_MS: u64 = 600_000;

/// `upgrade:`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpgradeConfig {
    /// After the handover the old process stays alive (not accepting) this long, watching the
    /// new one: when it exits, stops answering `/readyz`, or answers too many requests with
    /// 5xx, the old binary takes the listening sockets back and `dyegate upgrade` reports
    /// `reverted`. 0: no watch (the old process exits once drained) [10000].
    #[serde(default = "default_watch_ms")]
    pub watch_ms: Ranged<0, MAX_WATCH_MS>,
    /// The share of the new process's answers that may be 5xx (or broken off) during the
    /// watch, from 0 to 1 [0.1].
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: f64,
    /// Answers the new process must have given before its error rate is judged [20].
    #[serde(default = "default_min_requests")]
    pub min_requests: Ranged<1, 1_000_000>,
}

impl Default for UpgradeConfig {
    fn default() -> Self {
        UpgradeConfig {
            watch_ms: default_watch_ms(),
            max_error_rate: default_max_error_rate(),
            min_requests: default_min_requests(),
        }
    }
}

fn default_watch_ms() -> Ranged<0, MAX_WATCH_MS> {
    Ranged(10_000)
}
fn default_max_error_rate() -> f64 {
    0.1
}
fn default_min_requests() -> Ranged<1, 1_000_000> {
    Ranged(20)
}

/// The watch as the old process runs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpgradeSettings {
    /// Zero: no watch.
    pub watch: Duration,
    pub max_error_rate: f64,
    pub min_requests: u64,
}

impl Default for UpgradeSettings {
    fn default() -> Self {
        upgrade_settings(&UpgradeConfig::default(), &mut Vec::new())
    }
}

pub fn upgrade_settings(config: &UpgradeConfig, issues: &mut Vec<Issue>) -> UpgradeSettings {
    let rate = config.max_error_rate;
    if !(0.0..=1.0).contains(&rate) {
        issues.push(Issue::new(
            "upgrade.max_error_rate",
            format!("found {rate}, expected a fraction from 0 to 1"),
        ));
    }
    UpgradeSettings {
        watch: Duration::from_millis(config.watch_ms.0),
        max_error_rate: rate.clamp(0.0, 1.0),
        min_requests: config.min_requests.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests_files::load_gateway as load;

    #[test]
    fn defaults_every_field_and_located_errors() {
        let gw = load("listen: [\"127.0.0.1:8080\"]\n").expect("valid");
        assert_eq!(
            gw.upgrade,
            UpgradeSettings {
                watch: Duration::from_secs(10),
                max_error_rate: 0.1,
                min_requests: 20
            }
        );
        let gw = load("upgrade: { watch_ms: 0, max_error_rate: 0.5, min_requests: 3 }\n")
            .expect("valid");
        assert_eq!(
            gw.upgrade,
            UpgradeSettings {
                watch: Duration::ZERO,
                max_error_rate: 0.5,
                min_requests: 3
            }
        );
        assert_eq!(
            load("upgrade: { max_error_rate: 1.5 }\n").err().as_deref(),
            Some("gateway.yaml:1:28: upgrade.max_error_rate: found 1.5, expected a fraction from 0 to 1")
        );
        assert_eq!(
            load("upgrade: { watch_ms: 700000 }\n").err().as_deref(),
            Some("gateway.yaml:1:22: upgrade.watch_ms: found 700000, expected a whole number from 0 to 600000")
        );
        assert_eq!(
            load("upgrade: { watch: 10 }\n").err().as_deref(),
            Some("gateway.yaml:1:12: upgrade.watch: found unknown field `watch`, expected one of `watch_ms`, `max_error_rate`, `min_requests`")
        );
    }
}
