//! A gateway configuration on disk: `gateway.yaml` + `routes.yaml` in a fresh temp dir, with
//! free loopback ports for the proxy and the admin API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::cli::{dyegate_cli_in, CliOutput, CLI_TIMEOUT};
use super::process::Dyegate;
use crate::ports::free_addr;

/// The file name of the gateway config inside the temp dir.
pub const GATEWAY_FILE: &str = "gateway.yaml";
/// The file name of the routes file inside the temp dir.
pub const ROUTES_FILE: &str = "routes.yaml";

/// A temp dir holding a complete gateway config; removed on drop.
#[derive(Debug)]
pub struct GatewayConfig {
    dir: TempDir,
    proxy: SocketAddr,
    admin: SocketAddr,
}

/// The `gateway.yaml` the suite uses: every path inside the temp dir, short grace period so a
/// shutdown never holds a test up.
pub fn gateway_yaml(proxy: SocketAddr, admin: SocketAddr) -> String {
    format!(
        "listen: [\"{proxy}\"]\n\
         admin: {{ listen: \"{admin}\" }}\n\
         routes: {ROUTES_FILE}\n\
         state_dir: ./state\n\
         pingora: {{ threads: 2, pid_file: ./dyegate.pid, upgrade_sock: ./dyegate-upgrade.sock, grace_period_seconds: 1 }}\n"
    )
}

impl GatewayConfig {
    /// Writes the suite's `gateway.yaml` and `routes_yaml` as `routes.yaml`.
    pub fn new(routes_yaml: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dyegate-test-")
            .tempdir()
            .expect("creating a temp dir for the gateway config");
        let config = Self {
            dir,
            proxy: free_addr(),
            admin: free_addr(),
        };
        config.write(GATEWAY_FILE, &gateway_yaml(config.proxy, config.admin));
        config.write(ROUTES_FILE, routes_yaml);
        config
    }

    /// Appends `yaml` (more top-level keys, e.g. a `tracing:` section) to the suite's
    /// `gateway.yaml`.
    pub fn gateway_extra(self, yaml: &str) -> Self {
        let mut text = gateway_yaml(self.proxy, self.admin);
        text.push_str(yaml);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        self.write(GATEWAY_FILE, &text);
        self
    }

    /// The proxy listener written in `gateway.yaml`.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy
    }

    /// The admin listener written in `gateway.yaml`.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `<dir>/<name>`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn gateway_file(&self) -> PathBuf {
        self.path(GATEWAY_FILE)
    }

    pub fn routes_file(&self) -> PathBuf {
        self.path(ROUTES_FILE)
    }

    /// (Over)writes `<dir>/<name>` with `contents`, returning its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// `dyegate check -c <dir>/gateway.yaml`.
    pub fn check(&self) -> CliOutput {
        let gateway = self.gateway_file();
        dyegate_cli_in(
            self.dir(),
            ["check".as_ref(), "-c".as_ref(), gateway.as_os_str()],
            CLI_TIMEOUT,
        )
    }

    /// `dyegate run -c <dir>/gateway.yaml`, expected to exit by itself (an invalid config);
    /// `timed_out` in the result tells when it kept running instead.
    pub fn run_to_exit(&self) -> CliOutput {
        let gateway = self.gateway_file();
        dyegate_cli_in(
            self.dir(),
            ["run".as_ref(), "-c".as_ref(), gateway.as_os_str()],
            CLI_TIMEOUT,
        )
    }

    /// Starts `dyegate run` on this config and waits until the proxy accepts connections.
    pub fn start(self) -> Dyegate {
        Dyegate::spawn(self)
    }
}
