//! The routes.yaml sections that contain a failing upstream, as serde structs mirroring the
//! file: `routes[i].timeouts`, `routes[i].retries`, `upstreams.NAME.health`,
//! `upstreams.NAME.outlier`, `upstreams.NAME.max_in_flight` and `routes[i].dye.on_unhealthy_tag`.
//! Checked by `compile_containment.rs`.

use crate::config::range::{Count, Millis, Percent, Ranged, ReadMillis};
use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// `routes[i].timeouts`: how long the gateway waits on the upstream.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// Connect (TCP); absent = gateway.yaml's `connect_timeout_ms`.
    #[serde(default)]
    pub connect_ms: Option<Millis>,
    /// Each read while waiting on the upstream (response header or body) [15000]; 0 = no read
    /// timeout (long-lived streams such as idle gRPC server streams).
    #[serde(default)]
    pub read_ms: Option<ReadMillis>,
    /// Each write of the request to the upstream [15000].
    #[serde(default)]
    pub write_ms: Option<Millis>,
    /// The whole request, retries included; absent = none.
    #[serde(default)]
    pub total_ms: Option<Millis>,
    /// Each read of a stream, in place of `read_ms`: an upgraded connection (WebSocket) after
    /// its `101`, and a gRPC call (`content-type: application/grpc…`) to an `h2`/`h2c` group
    /// [300000]. A stream idle that long is closed, as a normal end.
    #[serde(default)]
    pub stream_idle_ms: Option<Millis>,
}

/// Most extra tries a route may ask for.
pub const MAX_ATTEMPTS: u64 = 10;

/// `routes[i].retries`: extra tries on another target of the same group.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetriesConfig {
    /// Extra tries after the first [1]; 0 turns retries off.
    #[serde(default = "default_attempts")]
    pub attempts: Ranged<0, MAX_ATTEMPTS>,
    /// The failures that are retried [connect_failure].
    #[serde(default = "default_retry_on")]
    pub on: Vec<RetryOnConfig>,
    /// Retries at most this share of the route's requests over 10 s [20].
    #[serde(default = "default_budget_percent")]
    pub budget_percent: Percent,
}

impl Default for RetriesConfig {
    fn default() -> Self {
        RetriesConfig {
            attempts: default_attempts(),
            on: default_retry_on(),
            budget_percent: default_budget_percent(),
        }
    }
}

fn default_attempts() -> Ranged<0, MAX_ATTEMPTS> {
    Ranged(1)
}
fn default_retry_on() -> Vec<RetryOnConfig> {
    vec![RetryOnConfig::ConnectFailure]
}
fn default_budget_percent() -> Percent {
    Percent(20)
}

/// One entry of `retries.on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOnConfig {
    ConnectFailure,
    Reset,
    Timeout,
    /// `"500"`, `"502"`, `"503"` or `"504"` (quoted or not).
    Status(u16),
}

/// The names `retries.on` accepts, as the error message lists them.
pub const RETRY_ON_NAMES: &str =
    "one of `connect_failure`, `reset`, `timeout`, `500`, `502`, `503`, `504`";

impl<'de> Deserialize<'de> for RetryOnConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RetryOnConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(RETRY_ON_NAMES)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RetryOnConfig, E> {
                match s {
                    "connect_failure" => Ok(RetryOnConfig::ConnectFailure),
                    "reset" => Ok(RetryOnConfig::Reset),
                    "timeout" => Ok(RetryOnConfig::Timeout),
                    "500" | "502" | "503" | "504" => {
                        s.parse().map(RetryOnConfig::Status).map_err(E::custom)
                    }
                    _ => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RetryOnConfig, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RetryOnConfig, E> {
                match v {
                    500 | 502 | 503 | 504 => Ok(RetryOnConfig::Status(v as u16)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `upstreams.NAME.health`: active checks of every target of the group.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// An HTTP check; exactly one of `http` and `tcp` is given.
    #[serde(default)]
    pub http: Option<HttpCheckConfig>,
    /// `tcp: true`: a check is a TCP connect.
    #[serde(default)]
    pub tcp: Option<bool>,
    /// Time between the starts of two checks of a target [1000].
    #[serde(default)]
    pub interval_ms: Option<Millis>,
    /// Longest a check may take before it counts as failed [500].
    #[serde(default)]
    pub timeout_ms: Option<Millis>,
    /// Consecutive failed checks that mark a target unhealthy [2].
    #[serde(default)]
    pub unhealthy_after: Option<Count<1000>>,
    /// Consecutive good checks that mark an unhealthy target healthy again [2].
    #[serde(default)]
    pub healthy_after: Option<Count<1000>>,
}

/// `upstreams.NAME.health.http`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckConfig {
    /// Path requested with GET [/healthz].
    #[serde(default = "default_health_path")]
    pub path: String,
    /// `Host` header [the target's address].
    #[serde(default)]
    pub host: Option<String>,
    /// Statuses that count as healthy [any 2xx].
    #[serde(default)]
    pub expect: Option<Vec<Ranged<100, 599>>>,
}

fn default_health_path() -> String {
    "/healthz".into()
}

/// `upstreams.NAME.outlier`: passive ejection of targets that fail real requests.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutlierConfig {
    /// Consecutive failures (connect error, reset, timeout, 5xx, or an answer that broke off
    /// after its head) that eject a target [5].
    #[serde(default)]
    pub consecutive_failures: Option<Count<1000>>,
    /// First ejection; doubles on each re-ejection, at most 10 times this [10000].
    #[serde(default)]
    pub eject_ms: Option<Millis>,
    /// Never eject more than this share of the group's targets [50].
    #[serde(default)]
    pub max_ejected_percent: Option<Percent>,
}
