//! Wiring of the Pingora server: process settings from gateway.yaml, the proxy service on every
//! listener, the admin API, the reload and drain background services.

use crate::admin::AdminApi;
use crate::config::Gateway;
use crate::lifecycle::{DrainService, Lifecycle, PidFileService};
use crate::proxy::DyegateProxy;
use crate::reload::{ReloadService, Reloader};
use crate::source::etcd::EtcdSource;
use crate::telemetry::access_log::Destination;
use crate::telemetry::{AccessLog, Metrics, Tracing};
use pingora::apps::HttpServerOptions;
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::Duration;

/// How `dyegate run` was asked to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub daemon: bool,
    pub upgrade: bool,
}

fn server_conf(gw: &Gateway, opts: RunOptions) -> ServerConf {
    let p = &gw.config.pingora;
    ServerConf {
        threads: p.threads,
        pid_file: gw.pid_file.display().to_string(),
        upgrade_sock: gw.upgrade_sock.display().to_string(),
        grace_period_seconds: Some(p.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(p.graceful_shutdown_timeout_seconds),
        error_log: gw.error_log.as_ref().map(|p| p.display().to_string()),
        daemon: opts.daemon,
        // `dyegate upgrade` signals the old process only once the new one is waiting on the
        // upgrade socket; leave room for a slow start on a loaded machine.
        upgrade_sock_connect_accept_max_retries: Some(15),
        ..Default::default()
    }
}

/// Builds the server and runs it until it is told to stop. Never returns.
///
/// `etcd_read`: where the startup read of etcd left off (store revision, generation), when the
/// table comes from etcd and etcd answered.
pub fn run(
    gw: Gateway,
    reloader: Arc<Reloader>,
    metrics: Arc<Metrics>,
    opts: RunOptions,
    etcd_read: Option<(u64, String)>,
) -> ! {
    let conf = server_conf(&gw, opts);
    let opt = Opt {
        upgrade: opts.upgrade,
        daemon: opts.daemon,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    let phases = server.watch_execution_phase();
    server.bootstrap();
    let lifecycle = Lifecycle::new();

    let access_log = match (&gw.access_log, &gw.config.access_log) {
        (Some(dest), Some(cfg)) => {
            let dest = match dest {
                None => Destination::Stdout,
                Some(p) => Destination::File(p.clone()),
            };
            let (log, service) = AccessLog::new(dest, cfg.queue);
            metrics.watch_access_log_dropped(log.dropped());
            let flush = log.clone();
            lifecycle.on_exit(Box::new(move || flush.flush(Duration::from_secs(2))));
            server.add_service(background_service("access log", service));
            Some(log)
        }
        _ => None,
    };

    // Spans are exported by a background service: its threads start after Pingora's daemon fork.
    let (tracing, span_export) = Tracing::new(&gw.tracing);
    metrics.watch_spans_dropped(tracing.stats().dropped_counter());
    if let Some(export) = span_export {
        server.add_service(background_service("span export", export));
    }

    let proxy = DyegateProxy::new(
        reloader.active(),
        lifecycle.clone(),
        access_log,
        Duration::from_millis(gw.config.connect_timeout_ms),
    )
    .with_tracing(tracing)
    .with_failure_metrics(metrics.containment().clone());
    let mut service = http_proxy_service_with_name(&server.configuration, proxy, "dyegate proxy");
    for addr in &gw.listen {
        service.add_tcp(&addr.to_string());
    }
    if gw.config.h2c {
        if let Some(app) = service.app_logic_mut() {
            let mut options = HttpServerOptions::default();
            options.h2c = true;
            app.server_options = Some(options);
        }
    }
    server.add_service(service);

    if let (Some(settings), Some(status)) = (&gw.etcd, reloader.source()) {
        let source = EtcdSource::new(
            settings.clone(),
            reloader.clone(),
            metrics.clone(),
            lifecycle.clone(),
            status.clone(),
            etcd_read,
        );
        server.add_service(background_service("etcd source", source));
    }

    let admin = AdminApi::new(
        reloader.clone(),
        lifecycle.clone(),
        metrics,
        gw.config.admin.token.clone(),
        gw.listen.clone(),
    );
    let mut admin_service = Service::new("dyegate admin".to_string(), admin);
    admin_service.add_tcp(&gw.admin_listen.to_string());
    server.add_service(admin_service);

    let reload = ReloadService::new(
        reloader,
        lifecycle.clone(),
        // With etcd as the source there is no routes file to watch.
        gw.config.reload.watch && gw.etcd.is_none(),
        Duration::from_millis(gw.config.reload.debounce_ms),
    );
    server.add_service(background_service("reload", reload));
    server.add_service(background_service(
        "pid file",
        PidFileService::new(gw.pid_file.clone()),
    ));

    let drain = DrainService::new(
        lifecycle,
        phases,
        Duration::from_secs(gw.config.pingora.grace_period_seconds),
    );
    server.add_service(background_service("drain", drain));
    server.run_forever()
}
