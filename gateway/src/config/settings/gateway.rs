//! `gateway.yaml` to the settings the process runs with: typed listen addresses, absolute paths.

use super::admin_tokens::{admin_identities, AdminIdentity};
use super::forwarded::forwarding_settings;
use super::limits::{admin_limits_settings, limits_settings, AdminLimits, DownstreamLimits};
use super::listen::{listen_settings, ProxyProtocolListener};
use super::model::GatewayConfig;
use super::process::{
    access_log_settings, pingora_settings, reload_settings, AccessLogSettings, PingoraSettings,
    ReloadSettings,
};
use super::source::{source_settings, EtcdSettings};
use super::tls::{tls_settings, DownstreamTls};
use super::tracing::{tracing_settings, TracingSettings};
use crate::config::error::{ConfigError, ConfigErrors, Issue};
use crate::config::load::Source;
use crate::config::networks::networks;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The process settings, checked and with every path resolved against gateway.yaml's directory.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The gateway.yaml it came from (absent: all defaults in the working directory).
    pub file: Option<PathBuf>,
    /// The file as decoded: for what a SIGHUP compares (`config::settings::live`); everything else reads
    /// the typed settings below.
    pub config: GatewayConfig,
    pub listen: Vec<SocketAddr>,
    pub admin_listen: SocketAddr,
    pub routes_path: PathBuf,
    pub state_dir: PathBuf,
    pub pid_file: PathBuf,
    pub upgrade_sock: PathBuf,
    pub error_log: Option<PathBuf>,
    pub audit_log: PathBuf,
    /// `access_log:` `None`: off.
    pub access_log: Option<AccessLogSettings>,
    /// `pingora:` the server's threads, pools and drain times.
    pub pingora: PingoraSettings,
    /// `reload:` watching, debounce, history and size limits.
    pub reload: ReloadSettings,
    /// `h2c:` HTTP/2 over cleartext on the proxy listeners.
    pub h2c: bool,
    /// `connect_timeout_ms:` the upstream connect timeout of routes without their own.
    pub connect_timeout: Duration,
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
    /// The token this process's own tools present to the admin API (`dyegate upgrade`, the
    /// upgrade's watch of `/readyz`, `/status` and `/metrics`): the first identity's —
    /// `admin.token` (or `admin.token_file`), else the first of `admin.tokens`. `None` when the
    /// API has no tokens.
    pub fn own_token(&self) -> Option<&str> {
        self.admin_identities.first().map(|i| i.token.as_str())
    }

    /// `log.level` as written (`RUST_LOG`, when set, decides instead: `telemetry::log_level`).
    pub fn log_level(&self) -> super::logging::LogLevel {
        self.config.log.level
    }

    /// Loads gateway.yaml; `None` means defaults relative to the working directory. The steps:
    /// decode the file ([`decode`]), check and type every section with each problem collected
    /// ([`Gateway::checked`]), then either locate the problems in the file or hand out the
    /// settings.
    pub fn load(file: Option<&Path>) -> Result<Gateway, ConfigErrors> {
        let (config, source, base) = decode(file)?;
        let mut issues = Vec::new();
        let mut gw = Gateway::checked(config, &base, &mut issues);
        if !issues.is_empty() {
            return Err(located(source.as_ref(), issues));
        }
        gw.file = file.map(|f| std::path::absolute(f).unwrap_or_else(|_| f.to_path_buf()));
        Ok(gw)
    }

    /// Every section checked and typed, paths resolved against `base`; each problem goes to
    /// `issues` (in file order of the sections, as they are reported).
    fn checked(mut config: GatewayConfig, base: &Path, issues: &mut Vec<Issue>) -> Gateway {
        read_token_file(&mut config, base, issues);
        let Listeners {
            listen,
            admin_listen,
            mut proxy_protocol,
        } = listeners(&config, issues);
        let pingora = pingora_settings(&config.pingora, issues);
        let reload = reload_settings(&config.reload, issues);
        let admin_identities = admin_identities(&config.admin, base, issues);
        let tracing = tracing_settings(&config, issues);
        let debug_nets = networks(
            &config.debug.trusted_sources,
            "debug.trusted_sources",
            "127.0.0.0/8",
            issues,
        );
        let forwarded = forwarding_settings(&config.forwarded, issues);
        let server_header = server_header(config.server_header.as_deref(), issues);
        let dns = super::dns::dns_settings(&config.dns, issues);
        let upgrade = super::upgrade::upgrade_settings(&config.upgrade, issues);
        let routes_given = config.routes.is_some();
        let first = listen.first().copied();
        let etcd = source_settings(config.source.as_ref(), routes_given, base, first, issues);
        let tls = (config.tls.as_ref())
            .map(|t| tls_settings(t, &listen, admin_listen, base, &mut proxy_protocol, issues));
        let resolve = |p: &str| normalize(&base.join(p));
        Gateway {
            file: None,
            pingora,
            reload,
            h2c: config.h2c,
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            routes_path: resolve(config.routes.as_deref().unwrap_or("routes.yaml")),
            state_dir: resolve(&config.state_dir),
            pid_file: resolve(&config.pingora.pid_file),
            upgrade_sock: resolve(&config.pingora.upgrade_sock),
            error_log: config.pingora.error_log.as_deref().map(resolve),
            audit_log: resolve(&config.reload.audit_log),
            access_log: (config.access_log.as_ref()).map(|a| access_log_settings(a, resolve)),
            tracing,
            limits: limits_settings(&config.limits),
            admin_limits: admin_limits_settings(&config.admin.limits),
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
        }
    }
}

/// gateway.yaml decoded (all defaults without a file), its parsed source for locating
/// problems, and the absolute directory its paths are relative to.
fn decode(file: Option<&Path>) -> Result<(GatewayConfig, Option<Source>, PathBuf), ConfigErrors> {
    let (config, source, base) = match file {
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
    Ok((config, source, base))
}

/// The problems as errors, located in the file (or in `<defaults>` without one).
fn located(source: Option<&Source>, issues: Vec<Issue>) -> ConfigErrors {
    ConfigErrors(match source {
        Some(s) => issues.into_iter().map(|i| s.locate(i)).collect(),
        None => (issues.into_iter())
            .map(|i| ConfigError {
                file: "<defaults>".into(),
                mark: Default::default(),
                path: i.path,
                message: i.message,
            })
            .collect(),
    })
}

/// `listen` and `admin.listen`, checked together.
struct Listeners {
    listen: Vec<SocketAddr>,
    admin_listen: SocketAddr,
    proxy_protocol: Vec<ProxyProtocolListener>,
}

/// The proxy listeners (at least one) and the admin listener (loopback unless a token is set,
/// apart from the proxy's).
fn listeners(config: &GatewayConfig, issues: &mut Vec<Issue>) -> Listeners {
    let mut proxy_protocol = Vec::new();
    let listen: Vec<SocketAddr> = listen_settings(
        &config.listen,
        "listen",
        "0.0.0.0:8080",
        &mut proxy_protocol,
        issues,
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
    let admin = &config.admin;
    let admin_listen = match admin.listen.trim().parse::<SocketAddr>() {
        Ok(a) => {
            let token_set = (admin.token.as_deref()).is_some_and(|t| !t.trim().is_empty())
                // an unreadable token file has its own error
                || admin.token_file.is_some()
                || !admin.tokens.is_empty();
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
                    admin.listen
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
    Listeners {
        listen,
        admin_listen,
        proxy_protocol,
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
