//! The CLI (its checks and the admin commands), the schema, the deploy kit, and the suite's own tools.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod admin_cli;
mod check_cli;
mod deploy_kubernetes;
mod deploy_observability;
mod deploy_package;
mod harness;
mod schema;
mod source_shape;
mod start;
