//! The gateway under test: its binary, its config dir, the running process and its CLI.

mod admin;
mod binary;
mod cli;
mod config;
mod process;
mod yaml;

pub use binary::{dyegate_bin, workspace_root};
pub use cli::{
    dyegate_cli, dyegate_cli_env, dyegate_cli_in, dyegate_cli_tty, CliOutput, CLI_TIMEOUT,
};
pub use config::{gateway_yaml, GatewayConfig, AUDIT_LOG_FILE, GATEWAY_FILE, ROUTES_FILE};
pub use process::{Dyegate, START_TIMEOUT};
pub use yaml::{many_routes_yaml, upstream_groups, upstreams_yaml};
