//! `dyegate check`: gateway.yaml, the routes file and the certificate files checked without
//! serving, every problem printed located (`FILE:LINE:COL: path: found ..., expected ...`); and
//! the printing of located errors that `dyegate run` shares with it.

use super::args::default_config;
use crate::config::{load_routes, ConfigError, ConfigErrors, Gateway, Issue, Source};
use crate::tls::certificate::{rfc3339, EXPIRY_WARNING};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Prints every error, one per line.
pub fn print_errors(errors: &ConfigErrors, to_stdout: bool) {
    for e in &errors.0 {
        if to_stdout {
            println!("{e}");
        } else {
            eprintln!("{e}");
        }
    }
}

/// `dyegate check [-c gateway.yaml] [ROUTES] [--resolve]`: prints warnings then `OK: ...`, or
/// every error; the exit code says which.
pub fn check(config: Option<PathBuf>, routes: Option<PathBuf>, resolve: bool) -> ExitCode {
    let config = if routes.is_some() {
        config
    } else {
        default_config(config)
    };
    let mut errors = ConfigErrors(Vec::new());
    let mut max_file_bytes = crate::config::bounds::DEFAULT_MAX_FILE_BYTES;
    let mut dns = crate::config::DnsSettings::default();
    // `tls.certificates`: warnings (expiring soon), or the pairs that cannot be served.
    let mut certificates = Ok(Vec::new());
    let routes_path = match &config {
        Some(c) => match Gateway::load(Some(c)) {
            Ok(gw) => {
                certificates = check_certificates(&gw, c);
                if routes.is_none() && gw.etcd.is_some() {
                    if let Ok(warnings) = &certificates {
                        for w in warnings {
                            println!("{w}");
                        }
                        let prefix = gw.etcd.map(|e| e.prefix).unwrap_or_default();
                        println!("OK: {} (the routing table comes from etcd under {prefix}; `dyegate push FILE` checks a table before writing it)", c.display());
                        return ExitCode::SUCCESS;
                    }
                    None
                } else {
                    max_file_bytes = gw.reload.max_file_bytes;
                    dns = gw.dns.clone();
                    Some(gw.routes_path)
                }
            }
            Err(e) => {
                errors.0.extend(e.0);
                None
            }
        },
        None => Some(PathBuf::from("routes.yaml")),
    };
    let routes_path = routes.or(routes_path);
    let mut loaded = None;
    let mut unreachable = Vec::new();
    if let Some(path) = routes_path {
        match load_routes(&path, max_file_bytes) {
            Ok(l) => {
                unreachable = unreachable_routes(&path, &l);
                if resolve {
                    errors.0.extend(locate(
                        Some(&path),
                        crate::dns::startup::unresolved(&l.model, &dns),
                    ));
                }
                loaded = Some(l);
            }
            Err(e) => errors.0.extend(e.0),
        }
    }
    match (certificates, loaded) {
        (Ok(warnings), Some(loaded)) if errors.0.is_empty() => {
            for w in warnings.into_iter().chain(unreachable) {
                println!("{w}");
            }
            println!(
                "OK: {} routes, {} upstreams",
                loaded.routes, loaded.upstreams
            );
            ExitCode::SUCCESS
        }
        (certificates, _) => {
            errors.0.extend(certificates.err().unwrap_or_default());
            print_errors(&errors, true);
            ExitCode::FAILURE
        }
    }
}

/// `check`'s warnings about routes no request can reach (an earlier route matches every request
/// they would), located in the routes file.
fn unreachable_routes(path: &std::path::Path, loaded: &crate::config::LoadedRoutes) -> Vec<String> {
    let routes = loaded.table.routes();
    let source = Source::read(path).ok();
    (crate::routing::shadowed(routes).into_iter())
        .map(|s| {
            let issue = Issue::new(
                format!("routes[{}]", s.route),
                format!(
                    "route {} is unreachable: route {} (routes[{}]) above it matches every request it would; move it above, or narrow route {}",
                    routes[s.route].name, routes[s.by].name, s.by, routes[s.by].name
                ),
            );
            match &source {
                Some(src) => format!("warning: {}", src.locate(issue)),
                None => format!("warning: {}: {}: {}", path.display(), issue.path, issue.message),
            }
        })
        .collect()
}

/// Certificate errors located in gateway.yaml like every config error
/// (`gateway.yaml:LINE:COL: tls.certificates[0].key: found ..., expected ...`).
pub fn locate(file: Option<&Path>, issues: Vec<Issue>) -> Vec<ConfigError> {
    let source = file.and_then(|f| Source::read(f).ok());
    (issues.into_iter())
        .map(|i| match &source {
            Some(s) => s.locate(i),
            None => ConfigError {
                file: display(file),
                mark: Default::default(),
                path: i.path,
                message: i.message,
            },
        })
        .collect()
}

/// `dyegate check` of `tls.certificates`: every pair parses, matches and is valid now; a
/// certificate expiring within 14 days is a warning (printed, not a failure).
fn check_certificates(gw: &Gateway, file: &Path) -> Result<Vec<String>, Vec<ConfigError>> {
    let Some(tls) = &gw.tls else {
        return Ok(Vec::new());
    };
    let now = std::time::SystemTime::now();
    let soon = i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX);
    match crate::tls::certificates::load_all(tls, now) {
        Ok(certs) => Ok(certs
            .iter()
            .filter(|c| c.seconds_left(now) < soon)
            .map(|c| {
                format!(
                    "warning: {}: certificate {} expires in {} days, at {}",
                    c.paths.cert.display(),
                    c.name(),
                    c.seconds_left(now) / 86_400,
                    rfc3339(c.not_after)
                )
            })
            .collect()),
        Err(issues) => Err(locate(Some(file), issues)),
    }
}

/// A config file as messages name it (`built-in defaults` without one).
pub fn display(p: Option<&Path>) -> String {
    p.map_or_else(|| "built-in defaults".into(), |p| p.display().to_string())
}
