//! What a route and a group say about failures, compiled: timeouts, retries, health checks,
//! outlier ejection, the circuit breaker and the unhealthy-lane policy. Plain data, read by the
//! proxy and by `health`; built only by `config::compile_containment`.

use std::time::Duration;

/// `read_ms` and `write_ms` when not given.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_millis(15_000);

/// `routes[i].timeouts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `None`: gateway.yaml's `connect_timeout_ms`.
    pub connect: Option<Duration>,
    /// Each read while waiting on the upstream.
    pub read: Duration,
    /// Each write to the upstream.
    pub write: Duration,
    /// The whole request, retries included.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: None,
            read: DEFAULT_IO_TIMEOUT,
            write: DEFAULT_IO_TIMEOUT,
            total: None,
        }
    }
}
