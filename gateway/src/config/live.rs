//! Which edits of gateway.yaml a running gateway applies on SIGHUP (or `POST /reload`) and which
//! wait for `dyegate upgrade` (or a restart). Applied live: `server_header`, `forwarded`,
//! `debug.trusted_sources`, `limits.header_read_timeout_ms` and
//! `limits.max_request_header_bytes` (read per request or per new connection through one shared
//! handle), and `upgrade` (read from the file when an upgrade starts). Everything else is fixed when the process starts (listeners, runtimes, the admin
//! API, the source, TLS listeners, tracing, the access log, other limits that Pingora takes at
//! start; `dns`, which the resolver is built from) and is named, never silently ignored. Pure: compares two decoded files.

use super::limits::LimitsConfig;
use super::model::GatewayConfig;

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
    note("access_log", *access_log != new.access_log, false);
    note("tracing", *tracing != new.tracing, false);
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
    c
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
            "listen: [\"0.0.0.0:8081\"]\nserver_header: edge\nlimits: { header_read_timeout_ms: 2000, max_connections: 10 }\nforwarded: { trusted_sources: [10.0.0.0/8] }\ntracing: { sample_ratio: 0.5 }\n",
        );
        assert_eq!(
            gateway_change(&old, &new),
            GatewayChange {
                applied_live: vec![
                    "limits.header_read_timeout_ms",
                    "forwarded",
                    "server_header"
                ],
                needs_upgrade: vec!["listen", "tracing", "limits.max_connections"],
            }
        );
    }
}
