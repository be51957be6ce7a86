//! Trace export when the collector is down or stuck (requests do not care), and from a daemon.

use std::time::{Duration, Instant};

use dyegate_suite::trace::*;
use dyegate_suite::{
    free_addr, gateway::GatewayConfig, poll_until, Conn, Dyegate, OtlpProtocol, OtlpReceiver, Req,
};
use http::StatusCode;

/// `dyegate_spans_dropped_total` from the admin API.
async fn spans_dropped(gw: &Dyegate) -> u64 {
    let metrics = Req::get("/metrics").send(gw.admin_addr()).await.text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("dyegate_spans_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dyegate_spans_dropped_total in:\n{metrics}"))
}

/// Polls `dyegate_spans_dropped_total` until it reaches `at_least` or the deadline passes.
async fn wait_for_dropped(gw: &Dyegate, at_least: u64) -> u64 {
    poll_until(SPANS_TIMEOUT, || spans_dropped(gw), |d| *d >= at_least)
        .await
        .unwrap_or_else(|last| last)
}

/// Sends `n` requests on one connection; every one must succeed, none may wait on the exporter.
async fn requests_unaffected(gw: &Dyegate, n: usize) {
    let mut conn = Conn::http1(gw.addr()).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let start = Instant::now();
        let resp = conn.send(Req::get("/").host("shop.example.com")).await;
        slowest = slowest.max(start.elapsed());
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    }
    // The export timeout is 2 s: a request that waited on an export would take at least that.
    assert!(
        slowest < Duration::from_secs(1),
        "slowest request took {slowest:?}"
    );
}

#[tokio::test]
async fn collector_down_requests_unaffected_and_spans_counted_dropped() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::Http] {
        let shop = Shop::start();
        let nobody = free_addr();
        let gw = shop.gateway(&format!(
            "tracing: {{ endpoint: \"http://{nobody}\", protocol: {}, timeout_ms: 2000 }}\n",
            protocol.yaml()
        ));
        requests_unaffected(&gw, 50).await;
        let dropped = wait_for_dropped(&gw, 50).await;
        let counted = dropped >= 50;
        assert!(
            counted,
            "{protocol:?}: {dropped} of 50 spans counted dropped\n{}",
            gw.logs()
        );
        // The counters are also logged (at most once a second, when they change).
        let logged = dyegate_suite::wait_until(SPANS_TIMEOUT, || {
            gw.logs()
                .contains(&format!("spans_exported=0 spans_dropped={dropped} "))
        });
        assert!(logged, "{protocol:?}: counters not logged\n{}", gw.logs());
    }
}

#[tokio::test]
async fn collector_hanging_requests_unaffected_and_the_queue_bounded() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::Http] {
        let shop = Shop::start();
        let collector = OtlpReceiver::hanging(protocol);
        let queue = 16;
        let gw = shop
            .gateway(&collector.tracing_yaml(&format!("timeout_ms: 2000, queue_size: {queue}")));
        let n = 300;
        requests_unaffected(&gw, n).await;
        // At most one batch (<= queue) is held by the hung export and one queue is waiting:
        // every other span was dropped at once instead of being kept.
        let bound = (n - 2 * queue) as u64;
        let dropped = wait_for_dropped(&gw, bound).await;
        let counted = dropped >= bound;
        assert!(
            counted,
            "{protocol:?}: {dropped} spans dropped, expected >= {bound}\n{}",
            gw.logs()
        );
        assert!(
            collector.exports() >= 1,
            "{protocol:?}: the collector was reached"
        );
        assert!(collector.spans().is_empty());
    }
}

/// Pingora forks when daemonizing; the exporter's threads must be started after the fork.
#[tokio::test]
async fn spans_are_exported_from_a_daemon() {
    let shop = Shop::start();
    let collector = OtlpReceiver::grpc();
    let config = GatewayConfig::new(&shop.routes()).gateway_extra(&collector.tracing_yaml(""));
    let daemon = Daemon::start(&config);
    let resp = Req::get("/")
        .host("shop.example.com")
        .header("x-case", "d")
        .header("traceparent", &tp("01"))
        .send(config.proxy_addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", daemon.logs());
    let spans = collector.wait_for_spans(1, SPANS_TIMEOUT);
    assert_eq!(spans[0].trace_id_hex(), TRACE);
    assert_eq!(
        spans[0].span_id_hex(),
        sent_traceparent(&shop.received("d"), "d").parent
    );
}

/// `dyegate run --daemon`, killed through its pid file on drop.
struct Daemon {
    pid_file: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(config: &GatewayConfig) -> Daemon {
        let log = config.path("daemon.log");
        let mut text = std::fs::read_to_string(config.gateway_file()).expect("gateway.yaml");
        text = text.replace(
            "grace_period_seconds: 1 }",
            &format!("grace_period_seconds: 1, error_log: {} }}", log.display()),
        );
        config.write("gateway.yaml", &text);
        let status = std::process::Command::new(dyegate_suite::gateway::dyegate_bin())
            .args(["run", "--daemon", "-c"])
            .arg(config.gateway_file())
            .current_dir(config.dir())
            .status()
            .expect("running dyegate --daemon");
        let daemon = Daemon {
            pid_file: config.path("dyegate.pid"),
            log,
        };
        assert!(
            status.success(),
            "dyegate --daemon: {status}\n{}",
            daemon.logs()
        );
        let up = dyegate_suite::wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(config.proxy_addr()).is_ok()
        });
        assert!(up, "the daemon does not listen\n{}", daemon.logs());
        daemon
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.logs());
        }
        let pid = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
        let pid = pid.trim();
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid])
                .status();
        }
    }
}
