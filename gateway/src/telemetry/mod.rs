//! What the gateway tells about itself: Prometheus metrics and the JSON access log.

pub mod access_log;
pub mod metrics;

pub use access_log::{AccessLog, AccessLogService, AccessRecord};
pub use metrics::{Metrics, TableMetrics};
