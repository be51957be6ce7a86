//! Which edits of gateway.yaml a running gateway applies on SIGHUP (or `POST /reload`) and which
//! wait for `dyegate upgrade` (or a restart). Applied live: `server_header`, `forwarded`,
//! `debug.trusted_sources`, `limits.header_read_timeout_ms` and
//! `limits.max_request_header_bytes` (read per request or per new connection through one shared
//! handle), `tracing.sample_ratio` (read per new trace), `access_log` turned on or off and
//! `access_log.path` (the writer flushes the old file, then writes to the new one), and
//! `log.level` (unless `RUST_LOG` decides), and `upgrade` (read from the file when an upgrade
//! starts). Everything else is fixed when the process starts
//! (listeners, runtimes, the admin API, the source, TLS listeners, the rest of `tracing`, which
//! the exporter is built from, `access_log.queue`, other limits that Pingora takes at start;
//! `dns`, which the resolver is built from) and is named, never silently ignored. Pure: compares
//! two decoded files.

use super::limits::LimitsConfig;
use super::model::{AccessLogConfig, GatewayConfig, TracingConfig};

/// The keys whose values differ between the running gateway.yaml and the file on disk.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GatewayChange {
    /// Applied by this reload.
    pub applied_live: Vec<&'static str>,
    /// Changed in the file, not applied until `dyegate upgrade` (or a restart).
    pub needs_upgrade: Vec<&'static str>,
}

impl GatewayChange {
    pub fn is_empty(&self) -> bool {
        self.applied_live.is_empty() && self.needs_upgrade.is_empty()
    }
}

/// What changed from `old` to `new`, key by key.
pub fn gateway_change(old: &GatewayConfig, new: &GatewayConfig) -> GatewayChange {
    // Destructured whole: a new key must say here whether it is live.
    let GatewayConfig {
        listen,
        admin,
        routes,
        source,
        state_dir,
        pingora,
        h2c,
        connect_timeout_ms,
        reload,
        access_log,
        tracing,
        traceresponse,
        limits,
        debug,
        tls,
        forwarded,
        server_header,
        dns,
        upgrade,
        log,
    } = old;
    let mut c = GatewayChange::default();
    let mut note = |key: &'static str, changed: bool, live: bool| match (changed, live) {
        (false, _) => {}
        (true, true) => c.applied_live.push(key),
        (true, false) => c.needs_upgrade.push(key),
    };
    note("listen", *listen != new.listen, false);
    note("admin", *admin != new.admin, false);
    note("routes", *routes != new.routes, false);
    note("source", *source != new.source, false);
    note("state_dir", *state_dir != new.state_dir, false);
    note("pingora", *pingora != new.pingora, false);
    note("h2c", *h2c != new.h2c, false);
    note(
        "connect_timeout_ms",
        *connect_timeout_ms != new.connect_timeout_ms,
        false,
    );
    note("reload", *reload != new.reload, false);
    access_log_change(access_log.as_ref(), new.access_log.as_ref(), &mut note);
    tracing_change(tracing, &new.tracing, &mut note);
    note("traceresponse", *traceresponse != new.traceresponse, false);
    let LimitsConfig {
        header_read_timeout_ms,
        max_request_header_bytes,
        max_connections,
        keepalive_requests,
        idle_timeout_ms,
    } = limits;
    let l = &new.limits;
    note(
        "limits.header_read_timeout_ms",
        *header_read_timeout_ms != l.header_read_timeout_ms,
        true,
    );
    note(
        "limits.max_request_header_bytes",
        *max_request_header_bytes != l.max_request_header_bytes,
        true,
    );
    note(
        "limits.max_connections",
        *max_connections != l.max_connections,
        false,
    );
    note(
        "limits.keepalive_requests",
        *keepalive_requests != l.keepalive_requests,
        false,
    );
    note(
        "limits.idle_timeout_ms",
        *idle_timeout_ms != l.idle_timeout_ms,
        false,
    );
    note(
        "debug.trusted_sources",
        debug.trusted_sources != new.debug.trusted_sources,
        true,
    );
    note("tls", *tls != new.tls, false);
    note("forwarded", *forwarded != new.forwarded, true);
    note("server_header", *server_header != new.server_header, true);
    note("dns", *dns != new.dns, false);
    // Read from the file by the old process when an upgrade starts: the next upgrade uses it.
    note("upgrade", *upgrade != new.upgrade, true);
    note("log.level", log.level != new.log.level, true);
    c
}

/// `access_log`: turned on or off (`access_log`) and its file (`access_log.path`) are live; the
/// queue is allocated at start (`access_log.queue`, compared while the log stays on: a log
/// turned on again writes through the queue the process has).
fn access_log_change(
    old: Option<&AccessLogConfig>,
    new: Option<&AccessLogConfig>,
    note: &mut impl FnMut(&'static str, bool, bool),
) {
    match (old, new) {
        (Some(o), Some(n)) => {
            note("access_log.path", o.path.trim() != n.path.trim(), true);
            note("access_log.queue", o.queue != n.queue, false);
        }
        (o, n) => note("access_log", o.is_some() != n.is_some(), true),
    }
}

/// `tracing`: the sample ratio is live (read per new trace); every other key builds the
/// exporter at start.
fn tracing_change(
    old: &TracingConfig,
    new: &TracingConfig,
    note: &mut impl FnMut(&'static str, bool, bool),
) {
    let TracingConfig {
        endpoint,
        protocol,
        headers,
        timeout_ms,
        sample_ratio,
        baggage_key,
        queue_size,
        service_name,
    } = old;
    note("tracing.endpoint", *endpoint != new.endpoint, false);
    note("tracing.protocol", *protocol != new.protocol, false);
    note("tracing.headers", *headers != new.headers, false);
    note("tracing.timeout_ms", *timeout_ms != new.timeout_ms, false);
    note(
        "tracing.sample_ratio",
        *sample_ratio != new.sample_ratio,
        true,
    );
    note(
        "tracing.baggage_key",
        *baggage_key != new.baggage_key,
        false,
    );
    note("tracing.queue_size", *queue_size != new.queue_size, false);
    note(
        "tracing.service_name",
        *service_name != new.service_name,
        false,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GatewayConfig {
        crate::config::load::Source::from_text("gateway.yaml".into(), text.into())
            .and_then(|s| s.gateway())
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn live_keys_apply_and_the_others_are_named() {
        let old = parse("listen: [\"0.0.0.0:8080\"]\n");
        assert!(gateway_change(&old, &old).is_empty());
        let new = parse(
            "listen: [\"0.0.0.0:8081\"]\nserver_header: edge\nlimits: { header_read_timeout_ms: 2000, max_connections: 10 }\nforwarded: { trusted_sources: [10.0.0.0/8] }\ntracing: { sample_ratio: 0.5 }\nlog: { level: debug }\n",
        );
        assert_eq!(
            gateway_change(&old, &new),
            GatewayChange {
                applied_live: vec![
                    "tracing.sample_ratio",
                    "limits.header_read_timeout_ms",
                    "forwarded",
                    "server_header",
                    "log.level"
                ],
                needs_upgrade: vec!["listen", "limits.max_connections"],
            }
        );
    }

    #[test]
    fn tracing_is_live_for_its_sample_ratio_only() {
        let old = parse("tracing: { sample_ratio: 0.1 }\n");
        let new = parse(
            "tracing: { sample_ratio: 0.2, endpoint: \"http://127.0.0.1:4317\", service_name: edge }\n",
        );
        assert_eq!(
            gateway_change(&old, &new),
            GatewayChange {
                applied_live: vec!["tracing.sample_ratio"],
                needs_upgrade: vec!["tracing.endpoint", "tracing.service_name"],
            }
        );
    }

    #[test]
    fn the_access_log_turns_on_and_off_and_moves_live_its_queue_waits() {
        let off = parse("listen: [\"0.0.0.0:8080\"]\n");
        let on = parse("access_log: { path: a.log }\n");
        let change = |old: &GatewayConfig, new: &GatewayConfig| gateway_change(old, new);
        let live = |keys: &[&'static str]| GatewayChange {
            applied_live: keys.to_vec(),
            needs_upgrade: vec![],
        };
        assert_eq!(change(&off, &on), live(&["access_log"]));
        assert_eq!(change(&on, &off), live(&["access_log"]));
        // Spaces around a path are not a change (they are trimmed when the path is read).
        assert!(change(&on, &parse("access_log: { path: \" a.log \" }\n")).is_empty());
        assert_eq!(
            change(&on, &parse("access_log: { path: b.log, queue: 10 }\n")),
            GatewayChange {
                applied_live: vec!["access_log.path"],
                needs_upgrade: vec!["access_log.queue"],
            }
        );
        // Turned on with a queue of its own: the queue is judged where the process knows it
        // (reload/gateway_yaml.rs), not here.
        assert_eq!(
            change(&off, &parse("access_log: { queue: 10 }\n")),
            live(&["access_log"])
        );
    }
}
