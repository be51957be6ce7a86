//! `gateway.yaml` to the settings the process runs with: typed listen addresses, absolute paths.

use super::admin_tokens::{admin_identities, AdminIdentity};
use super::error::{ConfigError, ConfigErrors, Issue};
use super::forwarded::forwarding_settings;
use super::limits::{admin_limits_settings, limits_settings, AdminLimits, DownstreamLimits};
use super::listen::{listen_settings, ProxyProtocolListener};
use super::load::Source;
use super::model::GatewayConfig;
use super::networks::networks;
use super::source::{source_settings, EtcdSettings};
use super::tls::{tls_settings, DownstreamTls};
use super::tracing::{tracing_settings, TracingSettings};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The process settings, checked and with every path resolved against gateway.yaml's directory.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The gateway.yaml it came from (absent: all defaults in the working directory).
    pub file: Option<PathBuf>,
    pub config: GatewayConfig,
    pub listen: Vec<SocketAddr>,
    pub admin_listen: SocketAddr,
    pub routes_path: PathBuf,
    pub state_dir: PathBuf,
    pub pid_file: PathBuf,
    pub upgrade_sock: PathBuf,
    pub error_log: Option<PathBuf>,
    pub audit_log: PathBuf,
    /// `None`: off. `Some(None)`: stdout. `Some(Some(path))`: that file.
    pub access_log: Option<Option<PathBuf>>,
    pub tracing: TracingSettings,
    pub limits: DownstreamLimits,
    /// `admin.limits`: the admin listener's bounds.
    pub admin_limits: AdminLimits,
    /// `debug.trusted_sources`: who may ask for `x-dyegate-decision`.
    pub debug_trusted: dyegate_plugins::TrustedSources,
    /// `admin.token` and `admin.tokens`, their tokens read (empty: the API is open, loopback).
    pub admin_identities: Vec<AdminIdentity>,
    /// `source: { etcd: ... }`: the table comes from etcd, not from `routes_path`.
    pub etcd: Option<EtcdSettings>,
    /// `tls:` the HTTPS listeners and their certificate files.
    pub tls: Option<DownstreamTls>,
    /// The listeners (of `listen` and `tls.listen`) whose connections start with a PROXY
    /// protocol header.
    pub proxy_protocol: Vec<ProxyProtocolListener>,
    /// `forwarded`: trusted proxies and the forwarding headers written upstream.
    pub forwarded: dyegate_plugins::Forwarding,
    /// `server_header`: the `Server` header of dyegate's own answers (`None`: none).
    pub server_header: Option<http::HeaderValue>,
    /// `dns`: how the DNS names of upstream targets are resolved.
    pub dns: super::dns::DnsSettings,
    /// `upgrade`: the watch of a new binary after `dyegate upgrade`.
    pub upgrade: super::upgrade::UpgradeSettings,
}

impl Gateway {
    /// Loads gateway.yaml; `None` means defaults relative to the working directory.
    pub fn load(file: Option<&Path>) -> Result<Gateway, ConfigErrors> {
        let (mut config, source, base) = match file {
            Some(f) => {
                let source = Source::read(f).map_err(ConfigErrors)?;
                let config = source.gateway().map_err(ConfigErrors)?;
                let base = f
                    .parent()
                    .map(Path::to_path_buf)
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or_else(|| PathBuf::from("."));
                (config, Some(source), base)
            }
            None => (GatewayConfig::default(), None, PathBuf::from(".")),
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        let mut issues = Vec::new();
        read_token_file(&mut config, &base, &mut issues);
        let mut proxy_protocol = Vec::new();
        let listen: Vec<SocketAddr> = listen_settings(
            &config.listen,
            "listen",
            "0.0.0.0:8080",
            &mut proxy_protocol,
            &mut issues,
        )
        .into_iter()
        .map(|(_, a)| a)
        .collect();
        if config.listen.is_empty() {
            issues.push(Issue::new(
                "listen",
                "found an empty list, expected at least one listen address",
            ));
        }
        let admin_listen = match config.admin.listen.trim().parse::<SocketAddr>() {
            Ok(a) => {
                let token_set = config
                    .admin
                    .token
                    .as_deref()
                    .is_some_and(|t| !t.trim().is_empty())
                    // an unreadable token file has its own error
                    || config.admin.token_file.is_some()
                    || !config.admin.tokens.is_empty();
                if !a.ip().is_loopback() && !token_set {
                    issues.push(Issue::new(
                        "admin.listen",
                        format!(
                            "found non-loopback address {a} without admin.token, expected a loopback address or a bearer token in admin.token"
                        ),
                    ));
                }
                a
            }
            Err(_) => {
                issues.push(Issue::new(
                    "admin.listen",
                    format!(
                        "found {:?}, expected an IP:PORT address such as 127.0.0.1:9901",
                        config.admin.listen
                    ),
                ));
                SocketAddr::from(([127, 0, 0, 1], 9901))
            }
        };
        if listen.contains(&admin_listen) {
            issues.push(Issue::new(
                "admin.listen",
                format!("found {admin_listen}, also a proxy listener, expected a separate address"),
            ));
        }
        let pool = config.pingora.upstream_keepalive_pool_size;
        if pool == 0 || pool > 1_000_000 {
            issues.push(Issue::new(
                "pingora.upstream_keepalive_pool_size",
                format!("found {pool}, expected a number from 1 to 1000000"),
            ));
        }
        let tasks = config.pingora.listener_tasks_per_fd;
        if tasks == 0 || tasks > 64 {
            issues.push(Issue::new(
                "pingora.listener_tasks_per_fd",
                format!("found {tasks}, expected a number from 1 to 64"),
            ));
        }
        if config.reload.history_max_bytes == 0 {
            issues.push(Issue::new(
                "reload.history_max_bytes",
                "found 0, expected a number of bytes above 0",
            ));
        }
        if config.reload.max_file_bytes == 0 {
            issues.push(Issue::new(
                "reload.max_file_bytes",
                "found 0, expected a number of bytes above 0",
            ));
        }
        if config.reload.history == 0 || config.reload.history > 10_000 {
            issues.push(Issue::new(
                "reload.history",
                format!(
                    "found {}, expected a number from 1 to 10000",
                    config.reload.history
                ),
            ));
        }
        let admin_identities = admin_identities(&config.admin, &base, &mut issues);
        let tracing = tracing_settings(&config, &mut issues);
        let limits = limits_settings(&config.limits, &mut issues);
        let admin_limits = admin_limits_settings(&config.admin.limits, &mut issues);
        let debug_nets = networks(
            &config.debug.trusted_sources,
            "debug.trusted_sources",
            "127.0.0.0/8",
            &mut issues,
        );
        let forwarded = forwarding_settings(&config.forwarded, &mut issues);
        let server_header = server_header(config.server_header.as_deref(), &mut issues);
        let dns = super::dns::dns_settings(&config.dns, &mut issues);
        let upgrade = super::upgrade::upgrade_settings(&config.upgrade, &mut issues);
        let etcd = source_settings(
            config.source.as_ref(),
            config.routes.is_some(),
            &base,
            &mut issues,
        );
        let tls = (config.tls.as_ref()).map(|t| {
            tls_settings(
                t,
                &listen,
                admin_listen,
                &base,
                &mut proxy_protocol,
                &mut issues,
            )
        });
        if !issues.is_empty() {
            let errors: Vec<ConfigError> = match &source {
                Some(s) => issues.into_iter().map(|i| s.locate(i)).collect(),
                None => issues
                    .into_iter()
                    .map(|i| ConfigError {
                        file: "<defaults>".into(),
                        mark: Default::default(),
                        path: i.path,
                        message: i.message,
                    })
                    .collect(),
            };
            return Err(ConfigErrors(errors));
        }
        let resolve = |p: &str| normalize(&base.join(p));
        Ok(Gateway {
            file: file.map(|f| std::path::absolute(f).unwrap_or_else(|_| f.to_path_buf())),
            routes_path: resolve(config.routes.as_deref().unwrap_or("routes.yaml")),
            state_dir: resolve(&config.state_dir),
            pid_file: resolve(&config.pingora.pid_file),
            upgrade_sock: resolve(&config.pingora.upgrade_sock),
            error_log: config.pingora.error_log.as_deref().map(resolve),
            audit_log: resolve(&config.reload.audit_log),
            access_log: config.access_log.as_ref().map(|a| match a.path.trim() {
                "-" | "stdout" => None,
                p => Some(resolve(p)),
            }),
            tracing,
            limits,
            admin_limits,
            debug_trusted: dyegate_plugins::TrustedSources::new(debug_nets),
            admin_identities,
            etcd,
            tls,
            proxy_protocol,
            forwarded,
            server_header,
            dns,
            upgrade,
            listen,
            admin_listen,
            config,
        })
    }
}

/// `server_header`: printable ASCII, at most 128 bytes; empty: none.
fn server_header(value: Option<&str>, issues: &mut Vec<Issue>) -> Option<http::HeaderValue> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    let printable = value.bytes().all(|b| (b' '..=b'~').contains(&b));
    match http::HeaderValue::from_str(value) {
        Ok(h) if printable && value.len() <= 128 => Some(h),
        _ => {
            issues.push(Issue::new(
                "server_header",
                format!("found {value:?}, expected printable ASCII of at most 128 bytes (\"\" or null: no Server header)"),
            ));
            None
        }
    }
}

/// `admin.token_file`: its content becomes `admin.token`.
fn read_token_file(config: &mut GatewayConfig, base: &Path, issues: &mut Vec<Issue>) {
    let Some(file) = config.admin.token_file.clone() else {
        return;
    };
    if config.admin.token.is_some() {
        issues.push(Issue::new(
            "admin.token_file",
            "found both admin.token and admin.token_file, expected one of them",
        ));
        return;
    }
    let path = normalize(&base.join(&file));
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => config.admin.token = Some(text.trim().to_string()),
        Ok(_) => issues.push(Issue::new(
            "admin.token_file",
            format!(
                "found an empty file {}, expected a bearer token",
                path.display()
            ),
        )),
        Err(e) => issues.push(Issue::new(
            "admin.token_file",
            format!(
                "found {} unreadable ({e}), expected a file holding the bearer token",
                path.display()
            ),
        )),
    }
}

/// Lexically removes `.` and `..` components (`/etc/dyegate/./state` → `/etc/dyegate/state`).
pub(super) fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}
