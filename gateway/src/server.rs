//! Wiring of the Pingora server: process settings from gateway.yaml, the proxy service on every
//! listener, the admin API, the reload and drain background services.

use crate::admin::{AdminApi, BodyDeadline};
use crate::config::settings::model::DEFAULT_ACCESS_LOG_QUEUE;
use crate::config::Gateway;
use crate::dns::{DnsNames, DnsService};
use crate::downstream::fds::{connection_caps, Caps};
use crate::downstream::layout::{
    proxy_services as proxy_services_for, Downstream as ProxyDownstream, Layout, TlsListeners,
};
use crate::downstream::proxy_protocol::ProxyListeners;
use crate::downstream::{BoundedApp, DownstreamMetrics, Listener, LiveLimits};
use crate::handover::{FinalCounts, Handover, HandoverSignals, Parts};
use crate::health::{HealthRegistry, HealthService};
use crate::lifecycle::{DrainService, Lifecycle, PidFileService};
use crate::proxy::live::{Live, SharedLive};
use crate::proxy::DyegateProxy;
use crate::reload::{GatewayReload, LiveHandles};
use crate::reload::{ReloadService, Reloader};
use crate::rollout::fleet::FleetService;
use crate::rollout::{Controller, HooksService, RolloutService};
use crate::source::etcd::EtcdSource;
use crate::telemetry::access_log::Destination;
use crate::telemetry::failure_log::FailureLogFlush;
use crate::telemetry::log_level::LevelSource;
use crate::telemetry::{AccessLog, FailureLog, Metrics, Tracing};
use crate::tls::{CertificateService, Certificates, TlsAcceptor};
use crate::upgrade::standby::Standby;
use pingora::apps::HttpServerOptions;
use pingora::proxy::{http_proxy, HttpProxy};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{ExecutionPhase, RunArgs, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How `dyegate run` was asked to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub daemon: bool,
    pub upgrade: bool,
}

fn server_conf(gw: &Gateway, opts: RunOptions) -> ServerConf {
    let p = &gw.pingora;
    ServerConf {
        threads: p.threads.resolve(),
        work_stealing: p.work_stealing,
        listener_tasks_per_fd: p.listener_tasks_per_fd,
        upstream_keepalive_pool_size: p.upstream_keepalive_pool_size,
        pid_file: gw.pid_file.display().to_string(),
        upgrade_sock: gw.upgrade_sock.display().to_string(),
        grace_period_seconds: Some(p.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(p.graceful_shutdown_timeout.as_secs()),
        error_log: gw.error_log.as_ref().map(|p| p.display().to_string()),
        daemon: opts.daemon,
        // `dyegate upgrade` signals the old process only once the new one is waiting on the
        // upgrade socket; leave room for a slow start on a loaded machine.
        upgrade_sock_connect_accept_max_retries: Some(15),
        // Every timeout of a second or more on tokio's timer rather than Pingora's fast
        // timeout: 2% fewer instructions per proxied request (callgrind, docs/benchmarks.md,
        // "Issue 35: levers"; docs/pingora-upstream.md §17). Shorter ones (a route's
        // `read_ms` under 1000) stay on the fast timeout.
        fast_timeout_to_tokio_threshold_seconds: Some(0),
        ..Default::default()
    }
}

/// Builds the server and runs it until it is told to stop. Never returns.
///
/// `etcd_read`: where the startup read of etcd left off (store revision, generation), when the
/// table comes from etcd and etcd answered. `certificates`: the certificate set of the HTTPS
/// listeners, loaded, when gateway.yaml has `tls:`. `dns`: the table's DNS names, asked once
/// already (`dns::startup`).
///
/// The steps: Pingora's server; the proxy and what it reads ([`proxy`]); the proxy listeners
/// and the admin API behind the shared connection caps; the sources of change (certificate
/// watch, etcd); the background services and the drain ([`background`]).
#[allow(clippy::too_many_arguments)]
pub fn run(
    gw: Gateway,
    reloader: Arc<Reloader>,
    rollouts: Arc<Controller>,
    metrics: Arc<Metrics>,
    opts: RunOptions,
    etcd_read: Option<(u64, String)>,
    certificates: Option<Arc<Certificates>>,
    dns: Arc<DnsNames>,
) -> ! {
    let parts = Parts::new(&metrics, &certificates, &dns, &rollouts);
    let (mut server, phases, handover) = bootstrap(&gw, opts, parts);
    let lifecycle = Lifecycle::new();

    let (proxy, parts) = proxy(&mut server, &gw, &reloader, &metrics, &lifecycle, &dns);
    let ProxyParts {
        health,
        live,
        sample_ratio,
        access_log,
    } = parts;
    handover.attach_health(health.clone());
    let downstream = DownstreamMetrics::new();
    metrics.register(downstream.collectors());
    let caps = connection_caps(
        gw.limits.max_connections,
        gw.admin_limits.connection.max_connections,
    );
    let live_limits: LiveLimits = Arc::new(arc_swap::ArcSwap::from_pointee(gw.limits));
    let gateway_reload = Arc::new(GatewayReload::new(
        &gw,
        LiveHandles {
            live: live.clone(),
            limits: live_limits.clone(),
            sample_ratio,
            access_log,
            log_level: LevelSource::from_env(),
        },
    ));
    let listeners = Downstream {
        metrics: &downstream,
        caps,
        limits: live_limits.clone(),
    };
    let certs = certificates.as_ref();
    let mirror_book = proxy.mirror_book();
    for service in proxy_services(&server, &gw, opts, proxy, listeners.clone(), certs) {
        server.add_service(service);
    }
    if let (Some(certs), true) = (&certificates, gw.reload.watch) {
        server.add_service(background_service(
            "certificate watch",
            CertificateService::new(certs.clone(), lifecycle.clone(), gw.reload.debounce),
        ));
    }

    add_etcd_source(&mut server, &gw, &reloader, &metrics, &lifecycle, etcd_read);

    let traffic = crate::admin::live::SharedTraffic::default();
    server.add_service(background_service(
        "live view",
        crate::admin::live::LiveSampler::new(metrics.clone(), rollouts.clone(), traffic.clone()),
    ));
    let api = admin_api(&gw, listeners.clone(), &reloader, &lifecycle, metrics)
        .with_traffic(traffic)
        .with_health(health)
        .with_dns(dns)
        .with_rollouts(rollouts.clone())
        .with_certificates(certificates.clone())
        .with_live(live)
        .with_gateway(gateway_reload.clone())
        .with_handover(handover.clone())
        .with_mirrors(mirror_book);
    server.add_service(admin_service(&gw, listeners, api));

    let reload = ReloadService::new(
        reloader.clone(),
        lifecycle.clone(),
        // With etcd as the source there is no routes file to watch.
        gw.reload.watch && gw.etcd.is_none(),
        gw.reload.debounce,
    )
    .with_certificates(certificates)
    .with_gateway(gateway_reload);
    let background = Background {
        reloader,
        reload,
        rollouts,
        lifecycle,
        handover,
    };
    serve(server, &gw, phases, background)
}

/// Pingora's server with its sockets: bootstrapped (on an upgrade, after they arrived from the
/// old process, whose handover state is then taken), its execution phases watched.
fn bootstrap(
    gw: &Gateway,
    opts: RunOptions,
    parts: Parts,
) -> (Server, broadcast::Receiver<ExecutionPhase>, Arc<Handover>) {
    let opt = Opt {
        upgrade: opts.upgrade,
        daemon: opts.daemon,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(gw, opts));
    let phases = server.watch_execution_phase();
    server.bootstrap();
    // The sockets are here (an upgrade waited for them above): the old process wrote its
    // state before sending them.
    let handover = Handover::new(gw, parts);
    if opts.upgrade {
        handover.receive();
    }
    (server, phases, handover)
}

/// What the proxy reads besides the table that others change too: target health (the admin
/// API), the live settings, the sample ratio and the access log (the gateway.yaml reload).
struct ProxyParts {
    health: Arc<HealthRegistry>,
    live: SharedLive,
    sample_ratio: crate::telemetry::sample_ratio::SampleRatio,
    access_log: AccessLog,
}

/// The proxy and what it reads besides the table: the access log and span export (background
/// services), target health, the DNS names' addresses, the upstream failure log, and the
/// settings a SIGHUP changes live (returned too, for the admin API and the reload).
fn proxy(
    server: &mut Server,
    gw: &Gateway,
    reloader: &Reloader,
    metrics: &Metrics,
    lifecycle: &Arc<Lifecycle>,
    dns: &Arc<DnsNames>,
) -> (DyegateProxy, ProxyParts) {
    let access_log = access_log(server, gw, metrics, lifecycle);

    // Spans are exported by a background service: its threads start after Pingora's daemon fork.
    let (tracing, span_export) = Tracing::new(&gw.tracing);
    let sample_ratio = tracing.sample_ratio();
    metrics.watch_spans_dropped(tracing.stats().dropped_counter());
    if let Some(export) = span_export {
        server.add_service(background_service("span export", export));
    }

    let health = health(server, reloader, metrics, dns);
    server.add_service(background_service(
        "dns",
        DnsService::new(
            reloader.active(),
            dns.clone(),
            gw.dns.clone(),
            metrics.dns().clone(),
        ),
    ));
    let failure_log = Arc::new(FailureLog::default());
    server.add_service(background_service(
        "upstream failure log",
        FailureLogFlush(failure_log.clone()),
    ));
    let live: SharedLive = Arc::new(arc_swap::ArcSwap::from_pointee(Live::of(gw)));

    let proxy = DyegateProxy::new(
        reloader.active(),
        lifecycle.clone(),
        Some(access_log.clone()),
        gw.connect_timeout,
    )
    .with_tracing(tracing)
    .with_failure_metrics(metrics.containment().clone())
    .with_mirror_metrics(crate::mirror::MirrorMetrics::new(metrics))
    .with_health(health.clone())
    .with_live(live.clone())
    .with_failure_log(failure_log)
    .with_addresses(dns.book().clone())
    .with_https_port(gw.tls.as_ref().and_then(|t| t.port()).unwrap_or(443));
    let parts = ProxyParts {
        health,
        live,
        sample_ratio,
        access_log,
    };
    (proxy, parts)
}

/// What the background services and the way out share.
struct Background {
    reloader: Arc<Reloader>,
    reload: ReloadService,
    rollouts: Arc<Controller>,
    lifecycle: Arc<Lifecycle>,
    handover: Arc<Handover>,
}

/// The background services that outlive requests: reload (file, SIGHUP, certificates,
/// gateway.yaml), rollouts, the pid file, the drain that ends the process and the handover's
/// final counts; then serves until told to stop (SIGQUIT also starts the upgrade's watch,
/// [`HandoverSignals`]), and exits once the exit hooks ran.
fn serve(
    mut server: Server,
    gw: &Gateway,
    phases: broadcast::Receiver<ExecutionPhase>,
    b: Background,
) -> ! {
    let Background {
        reloader,
        reload,
        rollouts,
        lifecycle,
        handover,
    } = b;
    // A reload that swapped a table but has not recorded it yet finishes before the process
    // exits, whichever way it exits (early exit once drained, or Pingora's own).
    let settle = reloader.clone();
    lifecycle.on_exit(Box::new(move || settle.settle(EXIT_SETTLE)));
    server.add_service(background_service("reload", reload));
    // The hooks' and Prometheus gates' HTTP, off the judging thread.
    server.add_service(background_service(
        "rollout hooks",
        HooksService::new(rollouts.clone(), reloader.clone()),
    ));
    match (rollouts.fleet().cloned(), &gw.etcd) {
        // A fleet's rollouts: lease, windows, the driver's judgement, in etcd.
        (Some(view), Some(settings)) => server.add_service(background_service(
            "fleet rollouts",
            FleetService::new(
                settings.clone(),
                rollouts,
                view,
                reloader.clone(),
                lifecycle.clone(),
            ),
        )),
        _ => server.add_service(background_service(
            "rollouts",
            RolloutService::new(rollouts, reloader.clone()),
        )),
    };
    server.add_service(background_service(
        "pid file",
        PidFileService::new(gw.pid_file.clone()),
    ));
    let drain = DrainService::new(lifecycle.clone(), phases, gw.pingora.grace_period);
    server.add_service(background_service("drain", drain));
    server.add_service(background_service(
        "handover counts",
        FinalCounts(handover.clone()),
    ));
    let standby = Standby::new(gw, handover.clone(), lifecycle.clone());
    server.run(RunArgs {
        shutdown_signal: Box::new(HandoverSignals::new(handover, standby, lifecycle.clone())),
    });
    reloader.settle(EXIT_SETTLE);
    lifecycle.before_exit();
    std::process::exit(0)
}

/// The JSON access log: its writer runs as a background service, on or off as gateway.yaml
/// says (a SIGHUP can turn it on, off, or move it), and is flushed on the way out.
fn access_log(
    server: &mut Server,
    gw: &Gateway,
    metrics: &Metrics,
    lifecycle: &Lifecycle,
) -> AccessLog {
    let queue = (gw.access_log.as_ref()).map_or(DEFAULT_ACCESS_LOG_QUEUE, |a| a.queue);
    let (log, service) = AccessLog::new(Destination::of(&gw.access_log), queue);
    metrics.watch_access_log_dropped(log.dropped());
    let flush = log.clone();
    lifecycle.on_exit(Box::new(move || flush.flush(Duration::from_secs(2))));
    server.add_service(background_service("access log", service));
    log
}

/// Target health outlives tables: one registry, read by the proxy, fed by the checker service
/// (which checks the addresses of DNS names too).
fn health(
    server: &mut Server,
    reloader: &Reloader,
    metrics: &Metrics,
    dns: &DnsNames,
) -> Arc<HealthRegistry> {
    let health = Arc::new(HealthRegistry::new(metrics.containment().clone()));
    health.sync(&reloader.active().load().table, dns.book());
    server.add_service(background_service(
        "health checks",
        HealthService::new(
            reloader.active(),
            health.clone(),
            metrics.containment().clone(),
        )
        .with_addresses(dns.book().clone()),
    ));
    health
}

/// The etcd source, when the table comes from etcd: one candidate per revision.
fn add_etcd_source(
    server: &mut Server,
    gw: &Gateway,
    reloader: &Arc<Reloader>,
    metrics: &Arc<Metrics>,
    lifecycle: &Arc<Lifecycle>,
    etcd_read: Option<(u64, String)>,
) {
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
}

/// What the proxy and admin listeners share: the downstream metric families, and the
/// connection caps fitted to the open-file limit together.
#[derive(Clone)]
struct Downstream<'a> {
    metrics: &'a DownstreamMetrics,
    caps: Caps,
    /// The proxy listeners' limits, which a SIGHUP can change (`config::settings::live`).
    limits: LiveLimits,
}

/// The admin API's endpoints, with `admin.limits.body_read_timeout_ms` on request bodies
/// ([`admin_service`] puts it on its listener).
fn admin_api(
    gw: &Gateway,
    listeners: Downstream<'_>,
    reloader: &Arc<Reloader>,
    lifecycle: &Arc<Lifecycle>,
    metrics: Arc<Metrics>,
) -> AdminApi {
    AdminApi::new(
        reloader.clone(),
        lifecycle.clone(),
        metrics,
        &gw.admin_identities,
        gw.listen.clone(),
        BodyDeadline::new(
            gw.admin_limits.body_read_timeout,
            listeners.metrics.for_listener(Listener::Admin),
        ),
    )
}

/// The admin API on `admin.listen`, behind the same connection handling as the proxy
/// listeners ([`BoundedApp`]) with `admin.limits`: its own cap (fitted to the open-file limit
/// with the proxy's), head and idle deadlines, and its own series in the downstream metrics.
fn admin_service(
    gw: &Gateway,
    listeners: Downstream<'_>,
    api: AdminApi,
) -> Service<BoundedApp<AdminApi>> {
    let mut limits = gw.admin_limits.connection;
    limits.max_connections = listeners.caps.admin;
    let downstream = listeners.metrics.for_listener(Listener::Admin);
    let app = BoundedApp::new(
        api,
        Arc::new(arc_swap::ArcSwap::from_pointee(limits)),
        false,
        downstream,
    );
    let mut service = Service::new("dyegate admin".to_string(), app);
    service.add_tcp(&gw.admin_listen.to_string());
    service
}

/// How long an exiting process waits for a reload under way to be recorded.
const EXIT_SETTLE: Duration = Duration::from_secs(10);

/// The proxy listeners' services (one, or one per runtime: [`Layout`]): Pingora's proxy app
/// behind dyegate's own connection handling ([`BoundedApp`]): a cap on open connections and a
/// bounded read of every request head, which Pingora 0.9 lacks (see docs/pingora-upstream.md).
/// With `tls:`, one more service for the HTTPS listeners: the same app and cap, the TLS
/// handshake done by `BoundedApp` too.
fn proxy_services(
    server: &Server,
    gw: &Gateway,
    opts: RunOptions,
    proxy: DyegateProxy,
    listeners: Downstream<'_>,
    certificates: Option<&Arc<Certificates>>,
) -> Vec<Service<BoundedApp<HttpProxy<DyegateProxy>>>> {
    let p = &gw.pingora;
    let layout = Layout::resolve(p.runtime, p.threads.resolve(), &gw.listen);
    log::info!("proxy listeners: {layout:?}");
    // Each per-core runtime's proxy has its own upstream pool: `upstream_keepalive_pool_size`
    // for its one thread (Pingora sizes a pool by the pool size times `threads`).
    let conf = match layout {
        Layout::Shared { .. } => server.configuration.clone(),
        Layout::PerCore { .. } => Arc::new(ServerConf {
            threads: 1,
            ..server_conf(gw, opts)
        }),
    };
    let make_app = |_runtime: usize| {
        let mut app = http_proxy(&conf, proxy.clone());
        let mut options = HttpServerOptions::default();
        options.h2c = gw.h2c;
        options.h2_idle_timeout = Some(gw.limits.idle_timeout);
        options.keepalive_request_limit = Some(gw.limits.keepalive_requests);
        app.server_options = Some(options);
        app
    };
    let mut limits = gw.limits;
    limits.max_connections = listeners.caps.proxy;
    listeners.limits.store(Arc::new(limits));
    let limits = listeners.limits.clone();
    let tls = match (certificates, &gw.tls) {
        (Some(certs), Some(tls)) => Some(TlsListeners {
            listen: &tls.listen,
            acceptor: Arc::new(TlsAcceptor::new(certs)),
        }),
        _ => None,
    };
    let downstream = ProxyDownstream {
        limits,
        h2c: gw.h2c,
        metrics: listeners.metrics.clone(),
        proxy_protocol: ProxyListeners::new(gw.proxy_protocol.clone()),
    };
    proxy_services_for(layout, &gw.listen, downstream, tls, make_app)
}
