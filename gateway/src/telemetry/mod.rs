//! What the gateway tells about itself: Prometheus metrics, the JSON access log, and its part in
//! distributed traces.
//!
//! - [`metrics`]: Prometheus families, pre-created per route, group and tag.
//! - [`containment`]: timeouts, retries, circuit breaker, health checks and ejections.
//! - [`dns`]: the DNS names of upstream groups: changes, failed lookups, addresses.
//! - [`grpc_status`]: the bounded `grpc_status` label of requests to HTTP/2 upstreams.
//! - [`status_class`]: the `status_class` label: the status's class, or `error` for an answer
//!   that broke after its head.
//! - [`access_log`]: one JSON line per request through a bounded writer.
//! - [`trace`]: per request, the incoming W3C context, the gateway span and the upstream headers.
//! - [`table_info`]: what the table in use is: its sha256 and configured split weights.
//! - [`export`]: the bounded span queue and the background service that exports it over OTLP.
//! - [`failure_log`]: upstream failures in the log, bounded: the first of a target per window in
//!   full, the rest counted and summed up.
//! - [`text_format`]: what the families rendered by hand share of the text format.
//! - [`log_level`]: `RUST_LOG` or gateway.yaml `log.level`, applied live.
//! - [`traffic`]: each route's realised share and rates over the last minute, for the live view.
//! - [`sample_ratio`]: the share of new traces sampled, changed live.

pub mod access_log;
pub mod containment;
pub mod dns;
pub mod export;
pub mod failure_log;
pub mod grpc_status;
pub mod labels;
pub mod log_level;
pub mod metrics;
pub mod sample_ratio;
pub mod status_class;
pub mod table_info;
pub mod text_format;
pub mod trace;
pub mod traffic;
pub mod window;

pub use access_log::{AccessLog, AccessLogService, AccessRecord};
pub use containment::{ContainmentMetrics, TimeoutKind};
pub use dns::DnsMetrics;
pub use export::{ExportService, ExportStats};
pub use failure_log::FailureLog;
pub use grpc_status::GrpcStatus;
pub use metrics::{Metrics, TableMetrics};
pub use status_class::StatusClass;
pub use trace::{RequestTrace, Tracing};
