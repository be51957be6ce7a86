//! dyegate: an edge gateway for canary releases on Pingora.
//!
//! - [`config`]: gateway.yaml and routes.yaml, from text to a compiled table, with located errors.
//! - [`routing`]: the immutable route table and its pure decision function.
//! - [`contain`]: request-path decisions for failing upstreams (timeouts, retries, breaker).
//! - [`health`]: per-target health outside the table: active checks, passive ejection, load.
//! - [`proxy`]: the Pingora `ProxyHttp` that asks the table and acts.
//! - [`reload`]: live reload (file watch, SIGHUP, admin API), versions, rollback, audit.
//! - [`admin`]: the admin HTTP API and the CLI's client for it.
//! - [`lifecycle`]: requests in flight, draining at handover, early exit once drained.
//! - [`upgrade`]: `dyegate upgrade`, the binary upgrade dance around Pingora's socket handover.
//! - [`telemetry`]: Prometheus metrics, the JSON access log, W3C trace context and OTLP spans.
//! - [`server`]: wiring of the Pingora server (listeners, signals, upgrade socket).

pub mod admin;
pub mod config;
pub mod contain;
pub mod health;
pub mod lifecycle;
pub mod proxy;
pub mod reload;
pub mod routing;
pub mod server;
pub mod telemetry;
pub mod upgrade;
