//! What a route and a group say about failures, compiled: timeouts, retries, health checks,
//! outlier ejection, the circuit breaker and the unhealthy-lane policy. Plain data, read by the
//! proxy and by `health`; built only by `config::compile_containment`.

use std::time::Duration;

/// `read_ms` and `write_ms` when not given.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_millis(15_000);

/// `stream_idle_ms` when not given: five minutes.
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_millis(300_000);

/// `routes[i].timeouts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `None`: gateway.yaml's `connect_timeout_ms`.
    pub connect: Option<Duration>,
    /// Each read while waiting on the upstream; `None` (`read_ms: 0`): no read timeout.
    pub read: Option<Duration>,
    /// Each write to the upstream.
    pub write: Duration,
    /// The whole request, retries included.
    pub total: Option<Duration>,
    /// Each read of a stream (an upgraded connection after its `101`, a gRPC call), in place
    /// of `read`.
    pub stream_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: None,
            read: Some(DEFAULT_IO_TIMEOUT),
            write: DEFAULT_IO_TIMEOUT,
            total: None,
            stream_idle: DEFAULT_STREAM_IDLE,
        }
    }
}

/// The failures `routes[i].retries.on` names, as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn(u8);

/// One kind of failed attempt, as `retries.on` and `dyegate_retries_total{reason}` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    ConnectFailure,
    Reset,
    Timeout,
    Status500,
    Status502,
    Status503,
    Status504,
}

impl RetryReason {
    pub const ALL: [RetryReason; 7] = [
        RetryReason::ConnectFailure,
        RetryReason::Reset,
        RetryReason::Timeout,
        RetryReason::Status500,
        RetryReason::Status502,
        RetryReason::Status503,
        RetryReason::Status504,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::ConnectFailure => "connect_failure",
            RetryReason::Reset => "reset",
            RetryReason::Timeout => "timeout",
            RetryReason::Status500 => "500",
            RetryReason::Status502 => "502",
            RetryReason::Status503 => "503",
            RetryReason::Status504 => "504",
        }
    }

    /// The reason for an upstream answer of this status, if `retries.on` can name it.
    pub fn for_status(status: u16) -> Option<RetryReason> {
        match status {
            500 => Some(RetryReason::Status500),
            502 => Some(RetryReason::Status502),
            503 => Some(RetryReason::Status503),
            504 => Some(RetryReason::Status504),
            _ => None,
        }
    }
}

impl RetryOn {
    pub fn with(self, r: RetryReason) -> RetryOn {
        RetryOn(self.0 | 1 << r as u8)
    }

    pub fn contains(self, r: RetryReason) -> bool {
        self.0 & (1 << r as u8) != 0
    }
}

/// `routes[i].retries`, compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Extra tries after the first (0: none).
    pub attempts: u8,
    pub on: RetryOn,
    /// Retries at most this share of the route's requests over the budget window.
    pub budget_percent: u8,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            attempts: 1,
            on: RetryOn::default().with(RetryReason::ConnectFailure),
            budget_percent: 20,
        }
    }
}

/// What a lane gets when its group has no healthy target (`dye.on_unhealthy_tag`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnhealthyTag {
    /// The route's split decides, as if untagged.
    #[default]
    Base,
    /// 503 naming the group.
    Reject,
}

/// How a target is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A TCP connect.
    Tcp,
    /// `GET path` with `Host: host` (the target's address when `None`); healthy when the status
    /// is in `expect` (any 2xx when empty).
    Http {
        path: String,
        host: Option<String>,
        expect: Vec<u16>,
    },
}

/// `upstreams.NAME.health`, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

/// `upstreams.NAME.outlier`, compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outlier {
    pub consecutive_failures: u32,
    /// The first ejection; each re-ejection doubles it, up to 10 times this.
    pub eject: Duration,
    pub max_ejected_percent: u8,
}

/// What a group says about failures: checks, ejection and the circuit breaker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPolicy {
    pub health: Option<HealthCheck>,
    pub outlier: Option<Outlier>,
    /// Requests in flight to the group past which new ones get 503 at once.
    pub max_in_flight: Option<u32>,
}
