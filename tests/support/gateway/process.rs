//! The running gateway: a `dyegate run` child process that is killed when the guard drops.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::binary::dyegate_bin;
use super::config::GatewayConfig;
use crate::wait::wait_until;

/// How long a gateway may take from spawn to accepting connections (a debug build on a busy
/// two-core machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

const STDOUT_FILE: &str = "dyegate.stdout";
const STDERR_FILE: &str = "dyegate.stderr";

/// A running `dyegate run -c <dir>/gateway.yaml`.
///
/// Dropping it kills the process (SIGKILL) and removes the temp dir; when the drop happens
/// during a panic (a failed assertion) the gateway's output is printed first.
pub struct Dyegate {
    child: Child,
    // Declared after `child` on purpose: the process is killed before its dir goes away.
    config: GatewayConfig,
}

impl Dyegate {
    /// Writes `routes_yaml` next to the suite's `gateway.yaml` and starts the gateway on it.
    pub fn start(routes_yaml: &str) -> Self {
        GatewayConfig::new(routes_yaml).start()
    }

    pub(crate) fn spawn(config: GatewayConfig) -> Self {
        let stdout = File::create(config.path(STDOUT_FILE)).expect("creating dyegate.stdout");
        let stderr = File::create(config.path(STDERR_FILE)).expect("creating dyegate.stderr");
        let child = Command::new(dyegate_bin())
            .arg("run")
            .arg("-c")
            .arg(config.gateway_file())
            .current_dir(config.dir())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", dyegate_bin().display()));
        let mut gateway = Self { child, config };
        gateway.wait_ready();
        gateway
    }

    /// Polls until the proxy port accepts a TCP connection; panics with the gateway's output if
    /// it exits first or the deadline passes.
    fn wait_ready(&mut self) {
        let addr = self.addr();
        let mut exited: Option<ExitStatus> = None;
        let ready = wait_until(START_TIMEOUT, || {
            exited = self.child.try_wait().ok().flatten();
            exited.is_none()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        if let Some(status) = exited {
            panic!(
                "dyegate exited with {status} before listening on {addr}\n{}",
                self.logs()
            );
        }
        assert!(
            ready,
            "dyegate did not listen on {addr} within {START_TIMEOUT:?}\n{}",
            self.logs()
        );
    }

    /// The proxy listener.
    pub fn addr(&self) -> SocketAddr {
        self.config.proxy_addr()
    }

    /// The admin API listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.config.admin_addr()
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn stdout_file(&self) -> PathBuf {
        self.config.path(STDOUT_FILE)
    }

    pub fn stderr_file(&self) -> PathBuf {
        self.config.path(STDERR_FILE)
    }

    /// Everything the gateway printed so far, for assertion messages.
    pub fn logs(&self) -> String {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        format!(
            "--- dyegate stdout ({}) ---\n{}--- dyegate stderr ---\n{}",
            self.config.dir().display(),
            read(self.stdout_file()),
            read(self.stderr_file())
        )
    }
}

impl Drop for Dyegate {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        if self.try_wait().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
