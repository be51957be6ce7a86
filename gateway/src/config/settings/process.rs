//! gateway.yaml's process-wide settings, typed for the code that builds the server
//! (`crate::server`, `main`): `pingora`, `reload`, `access_log`, `h2c` and
//! `connect_timeout_ms`. Their bounds are checked here ([`crate::config::range`]).

use super::model::{
    AccessLogConfig, PingoraConfig, ReloadConfig, FILE_BYTES_BOUND, HISTORY_BOUND,
    HISTORY_BYTES_BOUND, LISTENER_TASKS_BOUND, UPSTREAM_POOL_BOUND,
};
use super::runtime::{RuntimeLayout, Threads};
use crate::config::error::Issue;
use std::path::PathBuf;
use std::time::Duration;

/// `pingora:` what Pingora's server and the layout of the proxy listeners are built with (the
/// paths, `pid_file`, `upgrade_sock` and `error_log`, are resolved on [`crate::config::Gateway`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PingoraSettings {
    /// Resolved (`auto`) when the server is built.
    pub threads: Threads,
    pub runtime: RuntimeLayout,
    pub work_stealing: bool,
    pub listener_tasks_per_fd: usize,
    pub upstream_keepalive_pool_size: usize,
    /// Longest an old process drains after a stop or upgrade.
    pub grace_period: Duration,
    /// Then the runtimes are given this long to stop.
    pub graceful_shutdown_timeout: Duration,
}

/// `reload:` how routes.yaml changes are picked up and remembered (the audit log's path is
/// resolved on [`crate::config::Gateway`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSettings {
    /// Watch the routes file's directory (and the certificate files) and reload on change.
    pub watch: bool,
    /// Quiet time after the last file event before reloading.
    pub debounce: Duration,
    /// Versions kept for rollback.
    pub history: usize,
    /// Bytes of source text kept in the history at most.
    pub history_max_bytes: usize,
    /// A routes text longer than this is rejected before it is parsed.
    pub max_file_bytes: usize,
}

/// `access_log:` one JSON line per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSettings {
    /// `None`: stdout.
    pub path: Option<PathBuf>,
    /// Lines queued for the writer before lines are dropped.
    pub queue: usize,
}

/// `pingora:` checked and typed.
pub fn pingora_settings(p: &PingoraConfig, issues: &mut Vec<Issue>) -> PingoraSettings {
    UPSTREAM_POOL_BOUND.check(
        "pingora.upstream_keepalive_pool_size",
        p.upstream_keepalive_pool_size as u64,
        issues,
    );
    LISTENER_TASKS_BOUND.check(
        "pingora.listener_tasks_per_fd",
        p.listener_tasks_per_fd as u64,
        issues,
    );
    PingoraSettings {
        threads: p.threads,
        runtime: p.runtime,
        work_stealing: p.work_stealing,
        listener_tasks_per_fd: p.listener_tasks_per_fd,
        upstream_keepalive_pool_size: p.upstream_keepalive_pool_size,
        grace_period: Duration::from_secs(p.grace_period_seconds),
        graceful_shutdown_timeout: Duration::from_secs(p.graceful_shutdown_timeout_seconds),
    }
}

/// `reload:` checked and typed.
pub fn reload_settings(r: &ReloadConfig, issues: &mut Vec<Issue>) -> ReloadSettings {
    let history_max_bytes = r.history_max_bytes as u64;
    HISTORY_BYTES_BOUND.check("reload.history_max_bytes", history_max_bytes, issues);
    FILE_BYTES_BOUND.check("reload.max_file_bytes", r.max_file_bytes as u64, issues);
    HISTORY_BOUND.check("reload.history", r.history as u64, issues);
    ReloadSettings {
        watch: r.watch,
        debounce: Duration::from_millis(r.debounce_ms),
        history: r.history,
        history_max_bytes: r.history_max_bytes,
        max_file_bytes: r.max_file_bytes,
    }
}

/// `access_log:` typed, its path made absolute by `resolve`.
pub fn access_log_settings(
    a: &AccessLogConfig,
    resolve: impl Fn(&str) -> PathBuf,
) -> AccessLogSettings {
    AccessLogSettings {
        path: match a.path.trim() {
            "-" | "stdout" => None,
            p => Some(resolve(p)),
        },
        queue: a.queue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests_files::load_gateway as load;

    #[test]
    fn defaults_are_the_documented_ones() {
        let gw = load("").expect("valid");
        assert_eq!(gw.pingora.threads, Threads::Auto);
        assert_eq!(gw.pingora.runtime, RuntimeLayout::Shared);
        assert!(gw.pingora.work_stealing);
        assert_eq!(gw.pingora.listener_tasks_per_fd, 1);
        assert_eq!(gw.pingora.upstream_keepalive_pool_size, 128);
        assert_eq!(gw.pingora.grace_period, Duration::from_secs(30));
        assert_eq!(gw.pingora.graceful_shutdown_timeout, Duration::from_secs(5));
        assert_eq!(
            gw.reload,
            ReloadSettings {
                watch: true,
                debounce: Duration::from_millis(200),
                history: 20,
                history_max_bytes: 64 * 1024 * 1024,
                max_file_bytes: 64 * 1024 * 1024,
            }
        );
        assert_eq!(gw.access_log, None);
        assert!(gw.h2c);
        assert_eq!(gw.connect_timeout, Duration::from_millis(2_000));
    }

    #[test]
    fn every_key_is_read() {
        let gw = load(
            "pingora: { threads: 3, runtime: per_core, work_stealing: false, listener_tasks_per_fd: 2, upstream_keepalive_pool_size: 64, grace_period_seconds: 7, graceful_shutdown_timeout_seconds: 2 }\nreload: { watch: false, debounce_ms: 50, history: 5, history_max_bytes: 1000, max_file_bytes: 2000 }\naccess_log: { path: logs/access.log, queue: 10 }\nh2c: false\nconnect_timeout_ms: 750\n",
        )
        .expect("valid");
        assert_eq!(
            gw.pingora,
            PingoraSettings {
                threads: Threads::Count(3),
                runtime: RuntimeLayout::PerCore,
                work_stealing: false,
                listener_tasks_per_fd: 2,
                upstream_keepalive_pool_size: 64,
                grace_period: Duration::from_secs(7),
                graceful_shutdown_timeout: Duration::from_secs(2),
            }
        );
        assert_eq!(
            gw.reload,
            ReloadSettings {
                watch: false,
                debounce: Duration::from_millis(50),
                history: 5,
                history_max_bytes: 1000,
                max_file_bytes: 2000,
            }
        );
        let log = gw.access_log.expect("an access log");
        assert!(log
            .path
            .as_ref()
            .is_some_and(|p| p.is_absolute() && p.ends_with("logs/access.log")));
        assert_eq!(log.queue, 10);
        assert!(!gw.h2c);
        assert_eq!(gw.connect_timeout, Duration::from_millis(750));
        let stdout = load("access_log: { path: \"-\" }\n").expect("valid");
        assert_eq!(stdout.access_log.map(|a| a.path), Some(None));
    }

    #[test]
    fn bounds_are_reported_together() {
        assert_eq!(
            load("pingora: { listener_tasks_per_fd: 0, upstream_keepalive_pool_size: 0 }\nreload: { history: 0, history_max_bytes: 0, max_file_bytes: 0 }\n").err().as_deref(),
            Some([
                "gateway.yaml:1:68: pingora.upstream_keepalive_pool_size: found 0, expected a whole number from 1 to 1000000",
                "gateway.yaml:1:35: pingora.listener_tasks_per_fd: found 0, expected a whole number from 1 to 64",
                "gateway.yaml:2:42: reload.history_max_bytes: found 0, expected a whole number of bytes >= 1",
                "gateway.yaml:2:61: reload.max_file_bytes: found 0, expected a whole number of bytes >= 1",
                "gateway.yaml:2:20: reload.history: found 0, expected a whole number from 1 to 10000",
            ].join("\n").as_str())
        );
    }
}
