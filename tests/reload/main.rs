//! Live reloads: the triggers, traffic across a reload, versions and rollback, metrics and state kept, config bounds.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod config_bounds;
mod gateway_yaml;
mod gateway_yaml_telemetry;
mod metrics;
mod state_persistence;
mod traffic;
mod triggers;
mod versions;
