//! gateway.yaml's `limits:` how long and how much a downstream client may take before its first
//! request and between requests, and how many connections are open at once; `admin.limits:` the
//! same bounds for the admin listener, with small defaults of its own and a deadline on request
//! bodies. Enforced by [`crate::downstream`] around Pingora's HTTP app (and the body deadline by
//! [`crate::admin`]).

use crate::config::range::{bounded, Bound, Bounded, Count, Millis, Ranged};
use serde::Deserialize;
use std::time::Duration;

/// `max_request_header_bytes`: from 1 KiB (a request line and a Host header fit) to 1 MiB - 1
/// byte (Pingora refuses any request head past that itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBytes(pub u64);

impl Bounded for HeaderBytes {
    const BOUND: Bound<u64> = Bound::bytes(1024, 1_048_575);
    fn from_checked(v: u64) -> Self {
        HeaderBytes(v)
    }
}
bounded!(HeaderBytes, "HeaderBytes");

/// `limits:` as written in gateway.yaml (defaults in the field docs).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// From accept (or from the first byte of a later request) to the end of the request head
    /// [10000]; past it the connection is closed (slowloris).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: Millis,
    /// Largest request head (request line and headers); past it `431` [65536].
    #[serde(default = "default_max_request_header_bytes")]
    pub max_request_header_bytes: HeaderBytes,
    /// Open downstream connections; past it new ones are closed at accept [20000].
    #[serde(default = "default_max_connections")]
    pub max_connections: Count<10_000_000>,
    /// Requests served on one keep-alive connection before it is closed [10000].
    #[serde(default = "default_keepalive_requests")]
    pub keepalive_requests: Count<4_000_000_000>,
    /// A keep-alive connection with no request for this long is closed [60000].
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: Millis,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout_ms: default_header_read_timeout_ms(),
            max_request_header_bytes: default_max_request_header_bytes(),
            max_connections: default_max_connections(),
            keepalive_requests: default_keepalive_requests(),
            idle_timeout_ms: default_idle_timeout_ms(),
        }
    }
}

fn default_header_read_timeout_ms() -> Millis {
    Millis(10_000)
}
fn default_max_request_header_bytes() -> HeaderBytes {
    HeaderBytes(65_536)
}
fn default_max_connections() -> Count<10_000_000> {
    Ranged(20_000)
}
fn default_keepalive_requests() -> Count<4_000_000_000> {
    Ranged(10_000)
}
fn default_idle_timeout_ms() -> Millis {
    Millis(60_000)
}

/// The downstream limits the proxy listeners run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownstreamLimits {
    pub header_read_timeout: Duration,
    pub max_request_header_bytes: usize,
    pub max_connections: usize,
    pub keepalive_requests: u32,
    pub idle_timeout: Duration,
}

impl Default for DownstreamLimits {
    fn default() -> Self {
        limits_settings(&LimitsConfig::default())
    }
}

/// `limits` typed (the types checked every bound while decoding).
pub fn limits_settings(l: &LimitsConfig) -> DownstreamLimits {
    DownstreamLimits {
        header_read_timeout: Duration::from_millis(l.header_read_timeout_ms.0),
        max_request_header_bytes: usize::try_from(l.max_request_header_bytes.0)
            .unwrap_or(usize::MAX),
        max_connections: usize::try_from(l.max_connections.0).unwrap_or(usize::MAX),
        keepalive_requests: u32::try_from(l.keepalive_requests.0).unwrap_or(u32::MAX),
        idle_timeout: Duration::from_millis(l.idle_timeout_ms.0),
    }
}

/// `admin.limits:` as written in gateway.yaml: the bounds of `limits:` (same names, same
/// meaning) for the admin listener, with defaults sized for a handful of operators, probes and
/// scrapers, plus a deadline on request bodies.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminLimitsConfig {
    /// From accept (or from the first byte of a later request) to the end of the request head
    /// [5000]; past it the connection is closed.
    #[serde(default = "default_admin_header_read_timeout_ms")]
    pub header_read_timeout_ms: Millis,
    /// From the end of the request head to the end of its body [10000]; past it `408` and the
    /// connection is closed.
    #[serde(default = "default_admin_body_read_timeout_ms")]
    pub body_read_timeout_ms: Millis,
    /// Largest request head (request line and headers); past it `431` [16384].
    #[serde(default = "default_admin_max_request_header_bytes")]
    pub max_request_header_bytes: HeaderBytes,
    /// Open admin connections; past it new ones are closed at accept [32]. Lowered at startup
    /// to a sixteenth of the open-file limit (16 at least) when that cannot hold it.
    #[serde(default = "default_admin_max_connections")]
    pub max_connections: Count<MAX_ADMIN_CONNECTIONS>,
    /// Requests served on one keep-alive connection before it is closed [100].
    #[serde(default = "default_admin_keepalive_requests")]
    pub keepalive_requests: Count<4_000_000_000>,
    /// A keep-alive connection with no request for this long is closed [15000].
    #[serde(default = "default_admin_idle_timeout_ms")]
    pub idle_timeout_ms: Millis,
}

/// Most `admin.limits.max_connections` accepted (the open-file limit may lower it further).
pub const MAX_ADMIN_CONNECTIONS: u64 = 10_000;

impl Default for AdminLimitsConfig {
    fn default() -> Self {
        AdminLimitsConfig {
            header_read_timeout_ms: default_admin_header_read_timeout_ms(),
            body_read_timeout_ms: default_admin_body_read_timeout_ms(),
            max_request_header_bytes: default_admin_max_request_header_bytes(),
            max_connections: default_admin_max_connections(),
            keepalive_requests: default_admin_keepalive_requests(),
            idle_timeout_ms: default_admin_idle_timeout_ms(),
        }
    }
}

fn default_admin_header_read_timeout_ms() -> Millis {
    Millis(5_000)
}
fn default_admin_body_read_timeout_ms() -> Millis {
    Millis(10_000)
}
fn default_admin_max_request_header_bytes() -> HeaderBytes {
    HeaderBytes(16_384)
}
fn default_admin_max_connections() -> Count<MAX_ADMIN_CONNECTIONS> {
    Ranged(32)
}
fn default_admin_keepalive_requests() -> Count<4_000_000_000> {
    Ranged(100)
}
fn default_admin_idle_timeout_ms() -> Millis {
    Millis(15_000)
}

/// The bounds the admin listener runs with: the proxy listeners' kind, and the body deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminLimits {
    pub connection: DownstreamLimits,
    pub body_read_timeout: Duration,
}

impl Default for AdminLimits {
    fn default() -> Self {
        admin_limits_settings(&AdminLimitsConfig::default())
    }
}

/// `admin.limits` typed, as [`limits_settings`].
pub fn admin_limits_settings(l: &AdminLimitsConfig) -> AdminLimits {
    AdminLimits {
        connection: DownstreamLimits {
            header_read_timeout: Duration::from_millis(l.header_read_timeout_ms.0),
            max_request_header_bytes: usize::try_from(l.max_request_header_bytes.0)
                .unwrap_or(usize::MAX),
            max_connections: usize::try_from(l.max_connections.0).unwrap_or(usize::MAX),
            keepalive_requests: u32::try_from(l.keepalive_requests.0).unwrap_or(u32::MAX),
            idle_timeout: Duration::from_millis(l.idle_timeout_ms.0),
        },
        body_read_timeout: Duration::from_millis(l.body_read_timeout_ms.0),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::settings::tests_files::load_gateway as load;

    #[test]
    fn defaults_are_the_documented_ones() {
        let gw = load("listen: [\"127.0.0.1:8080\"]\n").expect("valid");
        let l = gw.limits;
        assert_eq!(l.header_read_timeout, Duration::from_millis(10_000));
        assert_eq!(l.max_request_header_bytes, 65_536);
        assert_eq!(l.max_connections, 20_000);
        assert_eq!(l.keepalive_requests, 10_000);
        assert_eq!(l.idle_timeout, Duration::from_millis(60_000));
    }

    #[test]
    fn every_field_is_read() {
        let gw = load(
            "limits: { header_read_timeout_ms: 500, max_request_header_bytes: 4096, max_connections: 10, keepalive_requests: 3, idle_timeout_ms: 700 }\n",
        )
        .expect("valid");
        let l = gw.limits;
        assert_eq!(l.header_read_timeout, Duration::from_millis(500));
        assert_eq!(l.max_request_header_bytes, 4096);
        assert_eq!(l.max_connections, 10);
        assert_eq!(l.keepalive_requests, 3);
        assert_eq!(l.idle_timeout, Duration::from_millis(700));
    }

    #[test]
    fn bad_limits_are_located() {
        assert_eq!(
            load("limits:\n  idle_timout_ms: 5\n").err().as_deref(),
            Some("gateway.yaml:2:3: limits.idle_timout_ms: found unknown field `idle_timout_ms`, expected one of `header_read_timeout_ms`, `max_request_header_bytes`, `max_connections`, `keepalive_requests`, `idle_timeout_ms`")
        );
        assert_eq!(
            load("limits:\n  header_read_timeout_ms: 0\n").err().as_deref(),
            Some("gateway.yaml:2:27: limits.header_read_timeout_ms: found 0, expected a whole number of milliseconds from 1 to 86400000")
        );
        assert_eq!(
            load("limits: { max_connections: -1 }\n").err().as_deref(),
            Some("gateway.yaml:1:28: limits.max_connections: found -1, expected a whole number from 1 to 10000000")
        );
        assert_eq!(
            load("limits: { max_request_header_bytes: 2000000 }\n").err().as_deref(),
            Some("gateway.yaml:1:37: limits.max_request_header_bytes: found 2000000, expected a whole number of bytes from 1024 to 1048575")
        );
        assert_eq!(
            load("limits: { max_request_header_bytes: 100 }\n").err().as_deref(),
            Some("gateway.yaml:1:37: limits.max_request_header_bytes: found 100, expected a whole number of bytes from 1024 to 1048575")
        );
        assert_eq!(
            load("limits: 5\n").err().as_deref(),
            Some("gateway.yaml:1:9: limits: found 5, expected a mapping with fields `header_read_timeout_ms`, `max_request_header_bytes`, `max_connections`, `keepalive_requests`, `idle_timeout_ms`")
        );
    }

    #[test]
    fn admin_defaults_are_the_documented_ones() {
        let gw = load("listen: [\"127.0.0.1:8080\"]\n").expect("valid");
        let a = gw.admin_limits;
        assert_eq!(
            a.connection.header_read_timeout,
            Duration::from_millis(5_000)
        );
        assert_eq!(a.body_read_timeout, Duration::from_millis(10_000));
        assert_eq!(a.connection.max_request_header_bytes, 16_384);
        assert_eq!(a.connection.max_connections, 32);
        assert_eq!(a.connection.keepalive_requests, 100);
        assert_eq!(a.connection.idle_timeout, Duration::from_millis(15_000));
    }

    #[test]
    fn every_admin_field_is_read_apart_from_the_proxy_limits() {
        let gw = load(
            "admin:\n  limits: { header_read_timeout_ms: 500, body_read_timeout_ms: 600, max_request_header_bytes: 4096, max_connections: 10, keepalive_requests: 3, idle_timeout_ms: 700 }\n",
        )
        .expect("valid");
        let a = gw.admin_limits;
        assert_eq!(a.connection.header_read_timeout, Duration::from_millis(500));
        assert_eq!(a.body_read_timeout, Duration::from_millis(600));
        assert_eq!(a.connection.max_request_header_bytes, 4096);
        assert_eq!(a.connection.max_connections, 10);
        assert_eq!(a.connection.keepalive_requests, 3);
        assert_eq!(a.connection.idle_timeout, Duration::from_millis(700));
        assert_eq!(gw.limits, super::DownstreamLimits::default());
    }

    #[test]
    fn bad_admin_limits_are_located() {
        assert_eq!(
            load("admin:\n  limits:\n    body_timeout_ms: 5\n").err().as_deref(),
            Some("gateway.yaml:3:5: admin.limits.body_timeout_ms: found unknown field `body_timeout_ms`, expected one of `header_read_timeout_ms`, `body_read_timeout_ms`, `max_request_header_bytes`, `max_connections`, `keepalive_requests`, `idle_timeout_ms`")
        );
        assert_eq!(
            load("admin:\n  limits: { body_read_timeout_ms: 0 }\n").err().as_deref(),
            Some("gateway.yaml:2:35: admin.limits.body_read_timeout_ms: found 0, expected a whole number of milliseconds from 1 to 86400000")
        );
        assert_eq!(
            load("admin: { limits: { max_connections: 0 } }\n").err().as_deref(),
            Some("gateway.yaml:1:37: admin.limits.max_connections: found 0, expected a whole number from 1 to 10000")
        );
        assert_eq!(
            load("admin: { limits: { max_connections: 20000 } }\n").err().as_deref(),
            Some("gateway.yaml:1:37: admin.limits.max_connections: found 20000, expected a whole number from 1 to 10000")
        );
        assert_eq!(
            load("admin: { limits: { max_request_header_bytes: 100 } }\n").err().as_deref(),
            Some("gateway.yaml:1:46: admin.limits.max_request_header_bytes: found 100, expected a whole number of bytes from 1024 to 1048575")
        );
        assert_eq!(
            load("admin: { limits: [] }\n").err().as_deref(),
            Some("gateway.yaml:1:18: admin.limits: found a list, expected a mapping with fields `header_read_timeout_ms`, `body_read_timeout_ms`, `max_request_header_bytes`, `max_connections`, `keepalive_requests`, `idle_timeout_ms`")
        );
    }
}
