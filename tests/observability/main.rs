//! Metrics and traces: Prometheus series, W3C trace context, OTLP export.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod collector;
mod export;
mod failure_log;
mod metrics;
mod tracing;
