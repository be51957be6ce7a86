//! The running gateway: a `dyegate run` child process that is killed when the guard drops.

use std::fs::{File, OpenOptions};
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
    // `None` only inside `stop`, which hands the dir back to the caller.
    config: Option<GatewayConfig>,
}

/// How long a stopped gateway may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Dyegate {
    /// Writes `routes_yaml` next to the suite's `gateway.yaml` and starts the gateway on it.
    pub fn start(routes_yaml: &str) -> Self {
        GatewayConfig::new(routes_yaml).start()
    }

    pub(crate) fn spawn(config: GatewayConfig) -> Self {
        Self::spawn_then(config, |_| {})
    }

    /// Spawns the gateway, runs `during_startup` on it at once, then waits until it is ready.
    pub(crate) fn spawn_then(config: GatewayConfig, during_startup: impl FnOnce(&Dyegate)) -> Self {
        // Appended, so that a gateway restarted on the same dir keeps the first run's output.
        let append = |name: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(config.path(name))
                .unwrap_or_else(|e| panic!("opening {name}: {e}"))
        };
        let (stdout, stderr): (File, File) = (append(STDOUT_FILE), append(STDERR_FILE));
        let mut command = Command::new(dyegate_bin());
        if let Some(limit) = config.open_file_limit() {
            limit_open_files(&mut command, limit);
        }
        for (name, value) in config.env() {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let child = command
            .arg("run")
            .arg("-c")
            .arg(config.gateway_file())
            .current_dir(config.dir())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", dyegate_bin().display()));
        let mut gateway = Self {
            child,
            config: Some(config),
        };
        during_startup(&gateway);
        gateway.wait_ready();
        gateway
    }

    /// Polls until the proxy port and the admin port accept a TCP connection (Pingora starts
    /// its services on their own threads: on a loaded machine the admin listener can come up
    /// after the proxy's); panics with the gateway's output if it exits first or the deadline
    /// passes.
    fn wait_ready(&mut self) {
        let addr = self.addr();
        // Only when gateway.yaml still has the suite's admin address (a test may move it).
        let admin = Some(self.admin_addr())
            .filter(|a| self.config().gateway_text().contains(&format!("\"{a}\"")));
        let mut exited: Option<ExitStatus> = None;
        let ready = wait_until(START_TIMEOUT, || {
            exited = self.child.try_wait().ok().flatten();
            exited.is_none()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && admin.is_none_or(|a| {
                    TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()
                })
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
        self.config().proxy_addr()
    }

    /// The admin API listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.config().admin_addr()
    }

    /// The config dir and its files (gateway.yaml, routes.yaml, state/, the output files).
    pub fn config(&self) -> &GatewayConfig {
        self.config
            .as_ref()
            .expect("the config is only taken by `stop`, which consumes the guard")
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the gateway process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Stops the gateway the quick way Pingora offers (SIGINT: close listeners and exit) and
    /// hands back its dir, whose state can then be started again with
    /// [`GatewayConfig::start`]; SIGKILL when it has not exited within 10 s.
    pub fn stop(mut self) -> GatewayConfig {
        if self.try_wait().is_none() {
            self.signal(libc::SIGINT);
            if !wait_until(STOP_TIMEOUT, || self.try_wait().is_some()) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        self.config
            .take()
            .expect("the config is only taken by `stop`, which consumes the guard")
    }

    /// Stops the gateway and starts a new process on the same dir, ports and state.
    pub fn restart(self) -> Dyegate {
        self.stop().start()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn stdout_file(&self) -> PathBuf {
        self.config().path(STDOUT_FILE)
    }

    pub fn stderr_file(&self) -> PathBuf {
        self.config().path(STDERR_FILE)
    }

    /// What the gateway wrote to stderr so far (its log).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_file()).unwrap_or_default()
    }

    /// Everything the gateway printed so far, for assertion messages.
    pub fn logs(&self) -> String {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        format!(
            "--- dyegate stdout ({}) ---\n{}--- dyegate stderr ---\n{}",
            self.config().dir().display(),
            read(self.stdout_file()),
            read(self.stderr_file())
        )
    }
}

/// Sets `RLIMIT_NOFILE` (soft and hard) to `limit` in the child, between fork and exec.
fn limit_open_files(command: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    let rlim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit(2),
    // which is async-signal-safe, on a struct it owns.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

impl Drop for Dyegate {
    fn drop(&mut self) {
        if self.config.is_none() {
            return;
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        if self.try_wait().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
