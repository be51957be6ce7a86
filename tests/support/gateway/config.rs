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

/// The audit log inside the temp dir (gateway.yaml's default `reload.audit_log`).
pub const AUDIT_LOG_FILE: &str = "state/audit.log";

/// A temp dir holding a complete gateway config; removed on drop.
#[derive(Debug)]
pub struct GatewayConfig {
    dir: TempDir,
    proxy: SocketAddr,
    admin: SocketAddr,
    /// `admin.token`, sent by the suite's admin helpers when set.
    admin_token: Option<String>,
    /// `RLIMIT_NOFILE` (soft and hard) the gateway process is started with; `None`: inherited.
    open_file_limit: Option<u64>,
    /// Environment variables set (`Some`) or removed (`None`) for the gateway process; the
    /// others are inherited.
    env: Vec<(String, Option<String>)>,
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
            admin_token: None,
            open_file_limit: None,
            env: Vec::new(),
        };
        config.write(GATEWAY_FILE, &gateway_yaml(config.proxy, config.admin));
        config.write(ROUTES_FILE, routes_yaml);
        config
    }

    /// Rewrites `gateway.yaml` as the suite's plus `extra` (whole top-level lines, e.g.
    /// `"reload: { watch: false }\n"`).
    pub fn with_gateway_extra(self, extra: &str) -> Self {
        let mut text = self.gateway_text();
        text.push_str(extra);
        self.write(GATEWAY_FILE, &text);
        self
    }

    /// Takes the routing table from etcd instead of `routes.yaml` (which stays, as the file
    /// `dyegate push` is given): the `routes:` line becomes `source_yaml`
    /// ([`etcd_source_yaml`](crate::etcd_source_yaml)).
    pub fn with_source(self, source_yaml: &str) -> Self {
        let text =
            self.gateway_text()
                .replacen(&format!("routes: {ROUTES_FILE}\n"), source_yaml, 1);
        self.write(GATEWAY_FILE, &text);
        self
    }

    /// Makes the proxy listener a PROXY protocol one: `{ addr, proxy_protocol: true }`, with
    /// `sources` (a YAML list, e.g. `"[127.0.0.1/32]"`) as its `proxy_protocol_sources`.
    pub fn with_proxy_protocol(self, sources: Option<&str>) -> Self {
        let sources = sources.map_or(String::new(), |s| format!(", proxy_protocol_sources: {s}"));
        let text = self.gateway_text().replacen(
            &format!("listen: [\"{}\"]", self.proxy),
            &format!(
                "listen: [{{ addr: \"{}\", proxy_protocol: true{sources} }}]",
                self.proxy
            ),
            1,
        );
        self.write(GATEWAY_FILE, &text);
        self
    }

    /// Sets `admin.token`; the admin helpers of [`Dyegate`] then send it as a bearer token.
    pub fn with_admin_token(mut self, token: &str) -> Self {
        let text = self.gateway_text().replacen(
            &format!("admin: {{ listen: \"{}\" }}", self.admin),
            &format!(
                "admin: {{ listen: \"{}\", token: \"{token}\" }}",
                self.admin
            ),
            1,
        );
        self.write(GATEWAY_FILE, &text);
        self.admin_token = Some(token.to_owned());
        self
    }

    /// Adds `fields` (e.g. `"limits: { max_connections: 8 }"`) to the `admin:` mapping of
    /// `gateway.yaml`, after `listen`; combines with [`with_admin_token`](Self::with_admin_token).
    pub fn with_admin_fields(self, fields: &str) -> Self {
        let listen = format!("admin: {{ listen: \"{}\"", self.admin);
        let text = self.gateway_text();
        assert!(
            text.contains(&listen),
            "gateway.yaml has no {listen}: {text}"
        );
        let text = text.replacen(&listen, &format!("{listen}, {fields}"), 1);
        self.write(GATEWAY_FILE, &text);
        self
    }

    /// Starts the gateway with an open-file limit of `limit` descriptors (`RLIMIT_NOFILE`, soft
    /// and hard: the gateway raises its soft limit to the hard one at startup).
    pub fn with_open_file_limit(mut self, limit: u64) -> Self {
        self.open_file_limit = Some(limit);
        self
    }

    /// The open-file limit set with [`with_open_file_limit`](Self::with_open_file_limit).
    /// Sets (`Some`) or removes (`None`) `name` in the gateway process's environment, e.g.
    /// `RUST_LOG`, which the tests' own environment may hold.
    pub fn with_env(mut self, name: &str, value: Option<&str>) -> Self {
        self.env.push((name.to_string(), value.map(str::to_string)));
        self
    }

    /// The environment changes [`with_env`](Self::with_env) asked for.
    pub fn env(&self) -> &[(String, Option<String>)] {
        &self.env
    }

    pub fn open_file_limit(&self) -> Option<u64> {
        self.open_file_limit
    }

    /// The current text of `gateway.yaml`.
    pub fn gateway_text(&self) -> String {
        self.read(GATEWAY_FILE)
    }

    /// `admin.token`, when one was set with [`with_admin_token`](Self::with_admin_token).
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// Appends `yaml` (more top-level keys, e.g. a `tracing:` section) to `gateway.yaml`.
    pub fn gateway_extra(self, yaml: &str) -> Self {
        let mut yaml = yaml.to_string();
        if !yaml.ends_with('\n') {
            yaml.push('\n');
        }
        self.with_gateway_extra(&yaml)
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

    /// The audit log the gateway appends to (`<dir>/state/audit.log`).
    pub fn audit_log(&self) -> PathBuf {
        self.path(AUDIT_LOG_FILE)
    }

    /// The text of `<dir>/<name>`; panics when it cannot be read.
    pub fn read(&self, name: &str) -> String {
        let path = self.path(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// (Over)writes `<dir>/<name>` with `contents`, returning its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Replaces `<dir>/<name>` the way editors and deploy tools do: write `<name>.tmp` in the
    /// same dir, then rename it over `<name>` (one atomic step for a reader).
    pub fn write_and_rename(&self, name: &str, contents: &str) -> PathBuf {
        let tmp = self.write(&format!("{name}.tmp"), contents);
        let path = self.path(name);
        std::fs::rename(&tmp, &path)
            .unwrap_or_else(|e| panic!("renaming {} over {}: {e}", tmp.display(), path.display()));
        path
    }

    /// `dyegate ARGS... -c <dir>/gateway.yaml`, run in the dir (e.g. `["status"]`,
    /// `["rollback", "--to", "1"]`).
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let gateway = self.gateway_file();
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        all.push("-c".as_ref());
        all.push(gateway.as_os_str());
        dyegate_cli_in(self.dir(), all, CLI_TIMEOUT)
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

    /// Like [`start`](Self::start), running `during_startup` on the process as soon as it is
    /// spawned, before it listens (e.g. to edit a file while it loads).
    pub fn start_then(self, during_startup: impl FnOnce(&Dyegate)) -> Dyegate {
        Dyegate::spawn_then(self, during_startup)
    }
}
