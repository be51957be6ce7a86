//! Serde structs that mirror `gateway.yaml` field for field. Nothing here is checked beyond its
//! YAML type and the bounds of its number types: [`super::gateway`] turns them into the settings
//! the process runs with.

use super::runtime::{RuntimeLayout, Threads};
use super::tracing::{EXPORT_TIMEOUT_BOUND, QUEUE_SIZE_BOUND, SAMPLE_RATIO_BOUND};
use crate::config::entries::Entries;
use crate::config::range::Bound;
use schemars::JsonSchema;
use serde::Deserialize;

/// `gateway.yaml`: process settings. SIGHUP applies the live ones (server_header, forwarded,
/// debug.trusted_sources, two limits, access_log, tracing.sample_ratio, log); the others need
/// `dyegate upgrade` or a restart.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Proxy listeners, `IP:PORT`.
    #[serde(default = "default_listen")]
    pub listen: Vec<super::listen::ListenConfig>,
    /// The admin API (status, reload, rollback, metrics, health endpoints).
    #[serde(default)]
    pub admin: AdminConfig,
    /// The routes file, relative to gateway.yaml's directory (default `routes.yaml`); exclusive
    /// with `source`.
    #[serde(default)]
    pub routes: Option<String>,
    /// Where the table comes from instead of the routes file (etcd).
    #[serde(default)]
    pub source: Option<super::source::SourceConfig>,
    /// Where versions of the routing table are kept (relative to gateway.yaml's directory).
    #[serde(default = "default_state_dir")]
    pub state_dir: String,
    /// Process settings handed to Pingora.
    #[serde(default)]
    pub pingora: PingoraConfig,
    /// Accept HTTP/2 over cleartext (prior knowledge) on the proxy listeners.
    #[serde(default = "default_true")]
    pub h2c: bool,
    /// Upstream connect timeout in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Live reload of the routes file.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// JSON access log; absent = off.
    #[serde(default)]
    pub access_log: Option<AccessLogConfig>,
    /// W3C trace context propagation and OTLP span export.
    #[serde(default)]
    pub tracing: TracingConfig,
    /// Answer every proxied request with a W3C `traceresponse` header (trace id, gateway span id).
    #[serde(default)]
    pub traceresponse: bool,
    /// Downstream connection bounds (header read time and size, connections, keep-alive).
    #[serde(default)]
    pub limits: super::limits::LimitsConfig,
    /// Who may ask for the routing decision with `x-dyegate-debug: 1`.
    #[serde(default)]
    pub debug: DebugConfig,
    /// HTTPS listeners: certificates chosen by SNI, reloaded live; absent = none.
    #[serde(default)]
    pub tls: Option<super::tls::TlsConfig>,
    /// The client's address behind proxies: trusted proxies and the forwarding headers
    /// written upstream.
    #[serde(default)]
    pub forwarded: super::forwarded::ForwardedConfig,
    /// The `Server` header of the answers dyegate writes itself (its error answers, 404, 429,
    /// 503, redirects); `""` or `null`: none. Proxied answers keep the upstream's.
    #[serde(default = "default_server_header")]
    pub server_header: Option<String>,
    /// How the DNS names of upstream targets (`NAME:PORT`) are resolved.
    #[serde(default)]
    pub dns: super::dns::DnsConfig,
    /// How `dyegate upgrade` watches the new binary, and reverts a failing one.
    #[serde(default)]
    pub upgrade: super::upgrade::UpgradeConfig,
    /// The level of dyegate's own log (`RUST_LOG`, when set, decides instead).
    #[serde(default)]
    pub log: super::logging::LogConfig,
}

/// `access_log:` one JSON line per request.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// `-` for stdout, or a file (relative to gateway.yaml's directory); SIGUSR1 reopens it.
    #[serde(default = "default_access_log_path")]
    pub path: String,
    /// Lines queued for the writer; beyond that lines are dropped and counted, never waited for.
    #[serde(default = "default_access_log_queue")]
    pub queue: usize,
}

fn default_access_log_path() -> String {
    "-".into()
}
/// `access_log.queue` when not written (also the queue of a log turned on by a SIGHUP when the
/// process started without one).
pub const DEFAULT_ACCESS_LOG_QUEUE: usize = 65_536;

fn default_access_log_queue() -> usize {
    DEFAULT_ACCESS_LOG_QUEUE
}

/// `reload:` how routes.yaml changes are picked up and remembered.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Watch the routes file's directory and reload on change.
    #[serde(default = "default_true")]
    pub watch: bool,
    /// Quiet time after the last file event before reloading (a burst of writes = one reload).
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// Versions kept (in memory and in state_dir) for rollback.
    #[serde(default = "default_history")]
    #[schemars(range(min = HISTORY_BOUND.min, max = HISTORY_BOUND.max))]
    pub history: usize,
    /// Bytes of source text kept in the history at most (the oldest versions go first; the
    /// running one is always kept).
    #[serde(default = "default_history_max_bytes")]
    #[schemars(range(min = HISTORY_BYTES_BOUND.min))]
    pub history_max_bytes: usize,
    /// Audit log: one JSON line per reload attempt (relative to gateway.yaml's directory).
    #[serde(default = "default_audit_log")]
    pub audit_log: String,
    /// A routes text longer than this is rejected before it is parsed (file, API, etcd).
    #[serde(default = "default_max_file_bytes")]
    #[schemars(range(min = FILE_BYTES_BOUND.min))]
    pub max_file_bytes: usize,
}

/// `reload.history`'s bound (checked with the rest of gateway.yaml, see [`crate::config::range`]).
pub const HISTORY_BOUND: Bound<u64> = Bound::whole(1, 10_000);
/// `reload.history_max_bytes`'s bound.
pub const HISTORY_BYTES_BOUND: Bound<u64> = Bound::bytes(1, u64::MAX);
/// `reload.max_file_bytes`'s bound.
pub const FILE_BYTES_BOUND: Bound<u64> = Bound::bytes(1, u64::MAX);

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            watch: true,
            debounce_ms: default_debounce_ms(),
            history: default_history(),
            history_max_bytes: default_history_max_bytes(),
            audit_log: default_audit_log(),
            max_file_bytes: default_max_file_bytes(),
        }
    }
}

fn default_debounce_ms() -> u64 {
    200
}
fn default_history() -> usize {
    20
}
fn default_history_max_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_max_file_bytes() -> usize {
    crate::config::bounds::DEFAULT_MAX_FILE_BYTES
}
fn default_audit_log() -> String {
    "./state/audit.log".into()
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: default_listen(),
            admin: AdminConfig::default(),
            routes: None,
            source: None,
            state_dir: default_state_dir(),
            pingora: PingoraConfig::default(),
            h2c: true,
            connect_timeout_ms: default_connect_timeout_ms(),
            reload: ReloadConfig::default(),
            access_log: None,
            tracing: TracingConfig::default(),
            traceresponse: false,
            limits: Default::default(),
            debug: DebugConfig::default(),
            tls: None,
            forwarded: Default::default(),
            server_header: default_server_header(),
            dns: Default::default(),
            upgrade: Default::default(),
            log: Default::default(),
        }
    }
}

fn default_listen() -> Vec<super::listen::ListenConfig> {
    vec![super::listen::ListenConfig::plain("0.0.0.0:8080")]
}
fn default_state_dir() -> String {
    "./state".into()
}
fn default_server_header() -> Option<String> {
    Some("dyegate".into())
}
fn default_true() -> bool {
    true
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}

/// `admin:` the admin API listener.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Admin listener, `IP:PORT`; loopback unless `token` is set [127.0.0.1:9901].
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Bearer token; required when `listen` is not a loopback address (unless `tokens` are
    /// given). One identity named `admin.token`, role `write`.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the bearer token instead (a mounted Kubernetes Secret, a systemd
    /// credential), relative to gateway.yaml's directory; read at startup, surrounding
    /// whitespace ignored. Not together with `token`.
    #[serde(default)]
    pub token_file: Option<String>,
    /// Named identities, each with its token in a file and a role (`read` or `write`).
    #[serde(default)]
    pub tokens: Vec<AdminTokenConfig>,
    /// The admin listener's connection bounds (header and body read time, header size,
    /// connections, keep-alive), apart from the proxy's `limits`.
    #[serde(default)]
    pub limits: super::limits::AdminLimitsConfig,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            token: None,
            token_file: None,
            tokens: Vec::new(),
            limits: Default::default(),
        }
    }
}

/// `admin.tokens[i]`: one named identity of the admin API.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    /// Named in every audit line and log line of its calls: 1-64 of `A-Z a-z 0-9 - _ .`.
    pub name: String,
    /// File holding the bearer token (relative to gateway.yaml's directory), read at startup;
    /// surrounding whitespace ignored.
    pub token_file: String,
    /// `read`: GET endpoints (status, versions, routes, upstreams, rollouts, metrics);
    /// `write`: also every POST (reload, rollback, rollouts).
    pub role: AdminRole,
}

/// What an admin identity may do.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    Read,
    Write,
}

fn default_admin_listen() -> String {
    "127.0.0.1:9901".into()
}

/// `pingora:` process settings handed to Pingora's server.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PingoraConfig {
    /// Worker threads of the proxy listeners: a number, or `auto` (one per core the process
    /// may run on) [auto].
    #[serde(default = "default_threads")]
    pub threads: Threads,
    /// How the worker threads are laid out: `shared` (one runtime, threads steal work from
    /// each other) or `per_core` (one one-thread runtime per worker, each with its own
    /// `SO_REUSEPORT` listening socket and upstream pool) [shared].
    #[serde(default)]
    pub runtime: RuntimeLayout,
    /// PID file, used by `dyegate upgrade` to find the running process [./dyegate.pid].
    #[serde(default = "default_pid_file")]
    pub pid_file: String,
    /// Socket the listening sockets are handed over through on upgrade [./dyegate-upgrade.sock].
    #[serde(default = "default_upgrade_sock")]
    pub upgrade_sock: String,
    /// Longest an old process drains after a stop or upgrade, in seconds [30].
    #[serde(default = "default_grace_period")]
    pub grace_period_seconds: u64,
    /// Then the runtimes are given this long to stop, in seconds [5].
    #[serde(default = "default_graceful_shutdown_timeout")]
    pub graceful_shutdown_timeout_seconds: u64,
    /// Error log file when daemonized (stderr otherwise).
    #[serde(default)]
    pub error_log: Option<String>,
    /// Idle upstream connections kept for reuse per worker thread, all upstreams together
    /// (Pingora multiplies it by `threads`) [128]. Raise it when more requests than this times
    /// `threads` are in flight at once: past it, connections are closed after use and reopened.
    #[serde(default = "default_upstream_pool")]
    #[schemars(range(min = UPSTREAM_POOL_BOUND.min, max = UPSTREAM_POOL_BOUND.max))]
    pub upstream_keepalive_pool_size: usize,
    /// Let idle worker threads steal ready connections from busy ones [true].
    #[serde(default = "default_work_stealing")]
    pub work_stealing: bool,
    /// Accept tasks per listening socket [1].
    #[serde(default = "default_listener_tasks")]
    #[schemars(range(min = LISTENER_TASKS_BOUND.min, max = LISTENER_TASKS_BOUND.max))]
    pub listener_tasks_per_fd: usize,
}

/// `pingora.upstream_keepalive_pool_size`'s bound.
pub const UPSTREAM_POOL_BOUND: Bound<u64> = Bound::whole(1, 1_000_000);
/// `pingora.listener_tasks_per_fd`'s bound.
pub const LISTENER_TASKS_BOUND: Bound<u64> = Bound::whole(1, 64);

impl Default for PingoraConfig {
    fn default() -> Self {
        PingoraConfig {
            threads: default_threads(),
            runtime: RuntimeLayout::default(),
            pid_file: default_pid_file(),
            upgrade_sock: default_upgrade_sock(),
            grace_period_seconds: default_grace_period(),
            graceful_shutdown_timeout_seconds: default_graceful_shutdown_timeout(),
            error_log: None,
            upstream_keepalive_pool_size: default_upstream_pool(),
            work_stealing: default_work_stealing(),
            listener_tasks_per_fd: default_listener_tasks(),
        }
    }
}

fn default_upstream_pool() -> usize {
    128
}
fn default_work_stealing() -> bool {
    true
}
fn default_listener_tasks() -> usize {
    1
}
fn default_threads() -> Threads {
    Threads::Auto
}
fn default_pid_file() -> String {
    "./dyegate.pid".into()
}
fn default_upgrade_sock() -> String {
    "./dyegate-upgrade.sock".into()
}
fn default_grace_period() -> u64 {
    30
}
fn default_graceful_shutdown_timeout() -> u64 {
    5
}

/// `tracing:` W3C trace context propagation (always on) and span export over OTLP (when an
/// endpoint is set).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// Collector URL (`http://HOST:PORT`); absent = propagate only, export nothing.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `grpc` (collector port 4317) or `http` (protobuf, port 4318) [grpc].
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Extra request headers (gRPC metadata) sent with every export, e.g. an API key.
    #[serde(default)]
    pub headers: Entries<String>,
    /// Longest one export may take before its spans are dropped.
    #[serde(default = "default_export_timeout_ms")]
    #[schemars(range(min = EXPORT_TIMEOUT_BOUND.min, max = EXPORT_TIMEOUT_BOUND.max))]
    pub timeout_ms: u64,
    /// Share of new traces sampled (0 to 1). Default: 1 with an endpoint, 0 without.
    #[serde(default)]
    #[schemars(range(min = SAMPLE_RATIO_BOUND.min, max = SAMPLE_RATIO_BOUND.max))]
    pub sample_ratio: Option<f64>,
    /// Baggage member that carries the dye tag.
    #[serde(default = "default_baggage_key")]
    pub baggage_key: String,
    /// Finished spans waiting for export; when full, new spans are dropped and counted.
    #[serde(default = "default_queue_size")]
    #[schemars(range(min = QUEUE_SIZE_BOUND.min, max = QUEUE_SIZE_BOUND.max))]
    pub queue_size: usize,
    /// `service.name` of the exported spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            endpoint: None,
            protocol: OtlpProtocol::default(),
            headers: Entries::default(),
            timeout_ms: default_export_timeout_ms(),
            sample_ratio: None,
            baggage_key: default_baggage_key(),
            queue_size: default_queue_size(),
            service_name: default_service_name(),
        }
    }
}

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// OTLP/gRPC (collector port 4317).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (collector port 4318, path `/v1/traces`).
    Http,
}

fn default_export_timeout_ms() -> u64 {
    10_000
}
fn default_baggage_key() -> String {
    "env-tag".into()
}
fn default_queue_size() -> usize {
    2_048
}
fn default_service_name() -> String {
    "dyegate".into()
}

/// gateway.yaml `debug`: who may ask for the `x-dyegate-decision` header.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    /// Networks whose requests may send `x-dyegate-debug: 1` [loopback only].
    #[serde(default = "default_debug_sources")]
    pub trusted_sources: Vec<String>,
}

impl Default for DebugConfig {
    fn default() -> Self {
        DebugConfig {
            trusted_sources: default_debug_sources(),
        }
    }
}

fn default_debug_sources() -> Vec<String> {
    vec!["127.0.0.0/8".into(), "::1/128".into()]
}
