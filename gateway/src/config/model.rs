//! Serde structs that mirror `gateway.yaml` and `routes.yaml` field for field. Nothing here is
//! checked beyond its YAML type: [`super::validate`] and [`super::compile`] do that.

pub use super::containment::{
    DebugConfig, HealthConfig, OutlierConfig, RetriesConfig, TimeoutsConfig,
};
pub use super::upstream_transport::{UpstreamProtocol, UpstreamTlsConfig};
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

pub use super::runtime::{RuntimeLayout, Threads};

// ---------------------------------------------------------------------------------------------
// gateway.yaml

/// `gateway.yaml`: static settings; changing them needs a restart or an upgrade.
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
fn default_access_log_queue() -> usize {
    65_536
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
    #[schemars(range(min = 1, max = 10_000))]
    pub history: usize,
    /// Bytes of source text kept in the history at most (the oldest versions go first; the
    /// running one is always kept).
    #[serde(default = "default_history_max_bytes")]
    pub history_max_bytes: usize,
    /// Audit log: one JSON line per reload attempt (relative to gateway.yaml's directory).
    #[serde(default = "default_audit_log")]
    pub audit_log: String,
    /// A routes text longer than this is rejected before it is parsed (file, API, etcd).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: usize,
}

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
    super::bounds::DEFAULT_MAX_FILE_BYTES
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
    #[schemars(range(min = 1, max = 1_000_000))]
    pub upstream_keepalive_pool_size: usize,
    /// Let idle worker threads steal ready connections from busy ones [true].
    #[serde(default = "default_work_stealing")]
    pub work_stealing: bool,
    /// Accept tasks per listening socket [1].
    #[serde(default = "default_listener_tasks")]
    #[schemars(range(min = 1, max = 64))]
    pub listener_tasks_per_fd: usize,
}

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
    #[schemars(range(min = 1, max = super::tracing::MAX_EXPORT_TIMEOUT_MS))]
    pub timeout_ms: u64,
    /// Share of new traces sampled (0 to 1). Default: 1 with an endpoint, 0 without.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample_ratio: Option<f64>,
    /// Baggage member that carries the dye tag.
    #[serde(default = "default_baggage_key")]
    pub baggage_key: String,
    /// Finished spans waiting for export; when full, new spans are dropped and counted.
    #[serde(default = "default_queue_size")]
    #[schemars(range(min = 1, max = super::tracing::MAX_QUEUE_SIZE))]
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

// ---------------------------------------------------------------------------------------------
// routes.yaml

/// `routes.yaml`. The top level is decoded entry by entry (see `load.rs`) so that every broken
/// upstream and route is reported, not only the first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutesConfig {
    /// In file order; `None` where the entry failed to decode (its name still counts as defined).
    /// Entries are shared with the next version when their text is unchanged (see
    /// `incremental.rs`).
    pub upstreams: Vec<(String, Option<Arc<UpstreamConfig>>)>,
    /// In file order; `None` where the route failed to decode.
    pub routes: Vec<Option<Arc<RouteConfig>>>,
    /// Field paths that failed to decode and were replaced by placeholders (see `load.rs`);
    /// validation issues on them, or on their parents, would only repeat the decoding error.
    pub failed: Vec<String>,
}

impl RoutesConfig {
    /// Whether an issue at `path` follows from a field that failed to decode.
    pub fn is_consequence(&self, path: &str) -> bool {
        self.failed
            .iter()
            .any(|f| path.starts_with(f.as_str()) || f.starts_with(path))
    }
}

/// Fields of a route (for field-by-field decoding; must match [`RouteConfig`]).
pub const ROUTE_FIELDS: &[&str] = &[
    "name",
    "match",
    "dye",
    "split",
    "sticky",
    "timeouts",
    "retries",
    "rollout",
    "limits",
    "https_redirect",
];
/// Fields of an upstream group (must match [`UpstreamConfig`]).
pub const UPSTREAM_FIELDS: &[&str] = &[
    "targets",
    "health",
    "outlier",
    "max_in_flight",
    "protocol",
    "tls",
];

/// routes.yaml decoded in one go (the fast path for valid files, see `config::routes_from_text`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    /// Upstream groups: named sets of interchangeable targets.
    #[serde(default)]
    pub upstreams: Entries<UpstreamConfig>,
    /// Routes, tried in file order: the first whose `match` holds wins; no match answers 404.
    pub routes: Vec<RouteConfig>,
}

/// Top-level keys of routes.yaml.
pub const ROUTES_FIELDS: &[&str] = &["upstreams", "routes"];

/// `upstreams.NAME`: a group of interchangeable targets.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Targets, picked by weighted round-robin.
    pub targets: Vec<TargetConfig>,
    /// Active health checks; absent = none.
    #[serde(default)]
    pub health: Option<HealthConfig>,
    /// Passive ejection of failing targets; absent = none.
    #[serde(default)]
    pub outlier: Option<OutlierConfig>,
    /// Circuit breaker: requests in flight to the group past which new ones get 503.
    #[serde(default)]
    pub max_in_flight: Option<super::containment::Count<1_000_000>>,
    /// `h1` [default], `h2` (TLS + ALPN) or `h2c` (cleartext, prior knowledge).
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// TLS to the targets (with `h1` or `h2`); absent = cleartext for `h1`, defaults for `h2`.
    #[serde(default)]
    pub tls: Option<UpstreamTlsConfig>,
}

/// A target: `"IP:PORT"` or `"NAME:PORT"` (a DNS name: one target per address it resolves to),
/// or `{ addr: "IP:PORT", weight: N }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    pub addr: String,
    pub weight: Weight,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFields {
    addr: String,
    #[serde(default = "Weight::one")]
    weight: Weight,
}

impl<'de> Deserialize<'de> for TargetConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TargetConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an address \"IP:PORT\" or \"NAME:PORT\", or { addr: \"IP:PORT\", weight: N }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TargetConfig, E> {
                Ok(TargetConfig {
                    addr: s.to_string(),
                    weight: Weight(1),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TargetConfig, A::Error> {
                let t = TargetFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TargetConfig {
                    addr: t.addr,
                    weight: t.weight,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A weight: a whole number >= 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weight(pub u32);

/// Largest weight accepted (keeps the sum of any split far from overflow).
pub const MAX_WEIGHT: u32 = 1_000_000;

impl Weight {
    fn one() -> Weight {
        Weight(1)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Weight;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number >= 0")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Weight, E> {
                if v < 0 {
                    return Err(E::invalid_value(de::Unexpected::Signed(v), &self));
                }
                self.visit_u64(v as u64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Weight, E> {
                match u32::try_from(v) {
                    Ok(w) if w <= MAX_WEIGHT => Ok(Weight(w)),
                    _ => Err(E::custom(format_args!(
                        "found {v}, expected a whole number from 0 to {MAX_WEIGHT}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `routes[i]`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique; used in logs and metrics.
    pub name: String,
    /// Which requests the route takes; every field optional, all given ones must hold.
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    /// Tag routing: a request whose tag header names a tag goes to that tag's group.
    #[serde(default)]
    pub dye: DyeConfig,
    /// Split of untagged traffic by weight; a single entry = no split.
    #[serde(default)]
    pub split: Vec<SplitEntryConfig>,
    /// `header:NAME`, `cookie:NAME` or `client_ip`.
    #[serde(default)]
    pub sticky: Option<String>,
    /// How long the gateway waits on the upstream.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Extra tries of a failed attempt on another target of the same group, within a budget.
    #[serde(default)]
    pub retries: RetriesConfig,
    /// Progressive delivery of a canary in this split; absent = none.
    #[serde(default)]
    pub rollout: Option<super::rollout::RolloutConfig>,
    /// Request rate limit of the route (429 with `retry-after` past it); absent = none.
    #[serde(default)]
    pub limits: Option<RateLimitConfig>,
    /// Answer plain-HTTP requests with 308 to the same URL on HTTPS (the port of the first
    /// `tls.listen` address, left out when 443) [false].
    #[serde(default)]
    pub https_redirect: bool,
}

/// `routes[i].match`: every field optional; all given ones must hold.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Exact host, or `*.example.com` for any subdomain; the port is ignored.
    #[serde(default)]
    pub host: Option<String>,
    /// String prefix of the path.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Methods, e.g. `[GET, POST]`.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Headers that must be present with one of the given values.
    #[serde(default)]
    pub headers: Entries<OneOrMany>,
}

/// `routes[i].dye`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DyeConfig {
    /// The tag header [x-env-tag].
    #[serde(default = "default_dye_header")]
    pub header: String,
    /// Tag -> upstream group; a request with that tag goes there.
    #[serde(default)]
    pub tags: Entries<String>,
    /// What a tag that maps to no group gets [base].
    #[serde(default)]
    pub on_unknown_tag: UnknownTagPolicy,
    /// What a tagged request gets when its lane has no healthy target.
    #[serde(default)]
    pub on_unhealthy_tag: UnhealthyTagPolicy,
    /// Networks (CIDR) whose tags are trusted; tags from other peers are stripped. Absent = all.
    #[serde(default)]
    pub trusted_sources: Option<Vec<String>>,
    /// Rate limit of the tagged requests of the route (instead of the route's `limits`), so a
    /// flood of tagged requests cannot swamp a small canary.
    #[serde(default)]
    pub limits: Option<RateLimitConfig>,
}

impl Default for DyeConfig {
    fn default() -> Self {
        DyeConfig {
            header: default_dye_header(),
            tags: Entries::default(),
            on_unknown_tag: UnknownTagPolicy::Base,
            on_unhealthy_tag: UnhealthyTagPolicy::Base,
            trusted_sources: None,
            limits: None,
        }
    }
}

/// `limits:` of a route or of its tagged lanes (`dye.limits`).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second per key, sustained (a whole number >= 1).
    pub rate_per_s: u32,
    /// Requests allowed above `rate_per_s` within one second [0].
    #[serde(default)]
    pub burst: u32,
    /// What requests are counted by: `client_ip` [default], `header:NAME` or `route` (all
    /// requests of the route together).
    #[serde(default = "default_limit_key")]
    pub key: String,
}

fn default_limit_key() -> String {
    "client_ip".into()
}

pub fn default_dye_header() -> String {
    "x-env-tag".into()
}

/// What a tag that maps to no group gets.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnknownTagPolicy {
    /// Routed as if untagged: the split decides.
    #[default]
    Base,
    /// Answered with 503.
    Reject,
}

/// What a tagged request gets when every target of its lane's group is unhealthy or ejected.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnhealthyTagPolicy {
    /// Routed by the route's split, as if untagged (reason `fallback_unhealthy`).
    #[default]
    Base,
    /// Answered with 503 naming the group.
    Reject,
}

/// `routes[i].split[j]`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitEntryConfig {
    /// The upstream group.
    pub upstream: String,
    /// Relative weight, a whole number >= 0 (0 gets nothing).
    pub weight: Weight,
}

/// A YAML mapping kept as ordered entries, duplicates included, so validation can report a
/// duplicated key instead of silently keeping the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<V>(pub Vec<(String, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entries<V>, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    out.push((k, map.next_value()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

/// A value or a list of values (`x-client: web` or `x-client: [web, mobile]`).
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![s.to_string()]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}
