//! The JSON access log end to end: one line per request with the request, the answer and the
//! routing decision; SIGUSR1 reopens the file after logrotate moved it; stdout works too; and
//! when the writer cannot keep up, lines are dropped and counted while requests go on.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use dyegate_suite::gateway::{gateway_yaml, GATEWAY_FILE};
use dyegate_suite::metrics::METRICS_TIMEOUT;
use dyegate_suite::{
    free_addr, upstream_groups, wait_until, Conn, Dyegate, GatewayConfig, Req, Upstream,
};
use http::StatusCode;
use serde_json::Value;

const SHOP: &str = "shop.example.com";
const API: &str = "api.example.com";
const LEGACY: &str = "legacy.example.com";

/// How long a line may take to reach the file: the writer flushes when idle for 200 ms.
const LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// A client's W3C trace context (the example of the spec).
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The fields of a line, exactly.
const FIELDS: [&str; 16] = [
    "time",
    "client",
    "method",
    "host",
    "path",
    "status",
    "duration_ms",
    "bytes_in",
    "bytes_out",
    "route",
    "upstream_group",
    "target",
    "tag",
    "decision",
    "routing_version",
    "trace_id",
];

/// The suite's gateway.yaml plus `extra` (whole top-level lines).
fn config_with(routes_yaml: &str, extra: &str) -> GatewayConfig {
    let config = GatewayConfig::new(routes_yaml);
    let base = gateway_yaml(config.proxy_addr(), config.admin_addr());
    config.write(GATEWAY_FILE, &format!("{base}{extra}"));
    config
}

/// Every line of `path` parsed as JSON; panics on a line that is not one JSON object. A missing
/// file has no lines.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_lines(&text, &path.display().to_string())
}

fn parse_lines(text: &str, origin: &str) -> Vec<Value> {
    text.lines()
        .enumerate()
        .map(|(i, line)| match serde_json::from_str::<Value>(line) {
            Ok(v) if v.is_object() => v,
            _ => panic!("{origin}:{}: not one JSON object: {line:?}", i + 1),
        })
        .collect()
}

/// Polls until `path` holds at least `n` lines; returns them.
fn wait_lines(gw: &Dyegate, path: &Path, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let held = wait_until(LOG_TIMEOUT, || {
        got = lines(path);
        got.len() >= n
    });
    assert!(
        held,
        "{} has {} lines, want {n}: {got:#?}\n{}",
        path.display(),
        got.len(),
        gw.logs()
    );
    got
}

/// The one line whose path is `path`.
fn line_for<'a>(lines: &'a [Value], path: &str) -> &'a Value {
    let found: Vec<&Value> = lines.iter().filter(|l| l["path"] == path).collect();
    assert_eq!(found.len(), 1, "lines for {path}: {lines:#?}");
    found[0]
}

fn paths(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| l["path"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// `2026-11-28T12:34:56.789Z`: RFC 3339, UTC, milliseconds.
fn is_rfc3339_millis(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
}

#[tokio::test]
async fn every_request_is_one_json_line_with_its_decision() {
    let ups: Vec<Upstream> = ["shop-stable", "shop-canary", "api-stable"]
        .iter()
        .map(|g| Upstream::start(g))
        .collect();
    let dead = free_addr();
    let routes = format!(
        "{}  legacy: {{ targets: [\"{dead}\"] }}
routes:
  - name: shop
    match: {{ host: {SHOP} }}
    dye: {{ tags: {{ canary: shop-canary }} }}
    split: [{{ upstream: shop-stable, weight: 1 }}]
  - name: api
    match: {{ host: {API} }}
    dye: {{ tags: {{ beta: api-stable }}, on_unknown_tag: reject }}
    split: [{{ upstream: api-stable, weight: 1 }}]
  - name: legacy
    match: {{ host: {LEGACY} }}
    split: [{{ upstream: legacy, weight: 1 }}]
",
        upstream_groups(&[
            ("shop-stable", &ups[0]),
            ("shop-canary", &ups[1]),
            ("api-stable", &ups[2]),
        ])
    );
    let gw = config_with(&routes, "access_log: { path: ./logs/access.log }\n").start();
    let log = gw.config().path("logs/access.log");

    let mut conn = Conn::http1(gw.addr()).await;
    let untagged = conn.send(Req::get("/untagged?q=1").host(SHOP)).await;
    assert_eq!(untagged.status, StatusCode::OK);
    let body = "x".repeat(1234);
    let post = conn
        .send(
            Req::post("/post")
                .host(SHOP)
                .header("x-env-tag", "canary")
                .header("traceparent", TRACEPARENT)
                .body(body.clone()),
        )
        .await;
    assert_eq!(post.upstream(), Some("shop-canary"));
    assert_eq!(post.json()["body_len"], 1234, "the upstream got the body");
    let unknown = conn
        .send(Req::get("/unknown").host(SHOP).header("x-env-tag", "blue"))
        .await;
    assert_eq!(unknown.upstream(), Some("shop-stable"));
    let rejected = conn
        .send(Req::get("/rejected").host(API).header("x-env-tag", "nope"))
        .await;
    assert_eq!(rejected.status, StatusCode::SERVICE_UNAVAILABLE);
    let missing = conn
        .send(Req::get("/missing").host("nowhere.example.com"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let failed = Req::get("/failed").host(LEGACY).send(gw.addr()).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);

    let got = wait_lines(&gw, &log, 6);
    assert_eq!(got.len(), 6, "one line per request: {got:#?}");
    for line in &got {
        let keys: BTreeSet<&str> = line
            .as_object()
            .expect("a line is an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, FIELDS.into_iter().collect(), "fields of {line}");
        let time = line["time"].as_str().unwrap_or("");
        assert!(is_rfc3339_millis(time), "time {time:?}");
        let client = line["client"].as_str().unwrap_or("");
        assert!(client.starts_with("127.0.0.1:"), "client {client:?}");
        assert_eq!(
            line["method"],
            if line["path"] == "/post" {
                "POST"
            } else {
                "GET"
            }
        );
        let ms = line["duration_ms"]
            .as_f64()
            .expect("duration_ms is a number");
        assert!((0.0..10_000.0).contains(&ms), "duration_ms {ms}");
        assert_eq!(line["routing_version"], 1);
        let trace_id = line["trace_id"].as_str().unwrap_or("");
        assert!(
            trace_id.len() == 32
                && trace_id
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && trace_id.bytes().any(|b| b != b'0'),
            "trace_id {trace_id:?}"
        );
    }
    // A request without a trace context starts its own trace; one with `traceparent` is logged
    // under the trace it belongs to.
    let trace_ids: BTreeSet<&str> = got.iter().filter_map(|l| l["trace_id"].as_str()).collect();
    assert_eq!(
        trace_ids.len(),
        got.len(),
        "one trace per request: {trace_ids:?}"
    );
    assert_eq!(line_for(&got, "/post")["trace_id"], &TRACEPARENT[3..35]);

    let expect = |path: &str, want: Value| {
        let line = line_for(&got, path);
        for (field, value) in want.as_object().expect("an object") {
            assert_eq!(&line[field], value, "{field} of {path}: {line:#}");
        }
    };
    let stable = ups[0].target();
    expect(
        "/untagged",
        serde_json::json!({
            "host": SHOP, "status": 200, "bytes_in": 0, "bytes_out": untagged.body.len(),
            "route": "shop", "upstream_group": "shop-stable", "target": stable,
            "tag": null, "decision": "split",
        }),
    );
    expect(
        "/post",
        serde_json::json!({
            "host": SHOP, "status": 200, "bytes_in": 1234, "bytes_out": post.body.len(),
            "route": "shop", "upstream_group": "shop-canary", "target": ups[1].target(),
            "tag": "canary", "decision": "tag",
        }),
    );
    // An unknown tag under `base`: routed as untagged, the tag it came with is logged.
    expect(
        "/unknown",
        serde_json::json!({
            "status": 200, "route": "shop", "upstream_group": "shop-stable", "target": stable,
            "tag": "blue", "decision": "fallback",
        }),
    );
    expect(
        "/rejected",
        serde_json::json!({
            "host": API, "status": 503, "bytes_out": rejected.body.len(), "route": "api",
            "upstream_group": null, "target": null, "tag": null, "decision": "reject",
        }),
    );
    expect(
        "/missing",
        serde_json::json!({
            "host": "nowhere.example.com", "status": 404, "bytes_out": missing.body.len(),
            "route": null, "upstream_group": null, "target": null, "tag": null, "decision": null,
        }),
    );
    expect(
        "/failed",
        serde_json::json!({
            "host": LEGACY, "status": 502, "route": "legacy", "upstream_group": "legacy",
            "target": dead.to_string(), "decision": "split",
        }),
    );

    // After a reload, lines carry the new routing version.
    let v2 = routes.replace("weight: 1 }]\n  - name: api", "weight: 2 }]\n  - name: api");
    assert_ne!(v2, routes);
    let next = gw.config().write("routes.yaml.next", &v2);
    std::fs::rename(&next, gw.config().routes_file()).expect("replacing routes.yaml");
    gw.wait_for_metrics(Duration::from_secs(10), "routing version 2", |m| {
        m.get("dyegate_routing_version", &[]) == Some(2.0)
    })
    .await;
    conn.send(Req::get("/after-reload").host(SHOP)).await;
    let all = wait_lines(&gw, &log, 7);
    let line = line_for(&all, "/after-reload");
    assert_eq!(line["routing_version"], 2, "{line}");
    assert_eq!(line["route"], "shop");
}

/// `kill -USR1 <pid>`.
fn sigusr1(gw: &Dyegate) {
    let status = Command::new("kill")
        .args(["-USR1", &gw.pid().to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -USR1 {}: {status}", gw.pid());
}

fn one_route(up: &Upstream) -> String {
    format!(
        "{}routes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        upstream_groups(&[("stable", up)])
    )
}

async fn send_paths(gw: &Dyegate, prefix: &str, n: usize) -> BTreeSet<String> {
    let mut conn = Conn::http1(gw.addr()).await;
    let mut sent = BTreeSet::new();
    for i in 0..n {
        let path = format!("/{prefix}-{i}");
        let resp = conn.send(Req::get(&path)).await;
        assert_eq!(resp.status, StatusCode::OK, "{path}");
        sent.insert(path);
    }
    sent
}

#[tokio::test]
async fn sigusr1_reopens_the_file_after_logrotate_moved_it() {
    let up = Upstream::start("stable");
    let gw = config_with(&one_route(&up), "access_log: { path: access.log }\n").start();
    let log = gw.config().path("access.log");
    let rotated = gw.config().path("access.log.1");

    let before = send_paths(&gw, "before", 3).await;
    wait_lines(&gw, &log, 3);
    std::fs::rename(&log, &rotated).expect("moving the log away");

    // Until told, the gateway keeps writing to the file it has open: the moved one.
    let between = send_paths(&gw, "between", 2).await;
    wait_lines(&gw, &rotated, 5);
    assert!(!log.exists(), "nothing recreated the log before SIGUSR1");

    sigusr1(&gw);
    assert!(
        wait_until(LOG_TIMEOUT, || log.exists()),
        "SIGUSR1 did not recreate {}\n{}",
        log.display(),
        gw.logs()
    );
    let after = send_paths(&gw, "after", 3).await;
    let new_lines = wait_lines(&gw, &log, 3);

    assert_eq!(
        paths(&new_lines),
        after,
        "the new file has exactly the lines after SIGUSR1"
    );
    let old: BTreeSet<String> = before.union(&between).cloned().collect();
    assert_eq!(
        paths(&lines(&rotated)),
        old,
        "the moved file has exactly the lines before SIGUSR1"
    );
    assert!(
        gw.logs().contains("access log reopened"),
        "the reopen is logged\n{}",
        gw.logs()
    );
}

#[tokio::test]
async fn path_dash_writes_lines_to_stdout() {
    let up = Upstream::start("stable");
    let gw = config_with(&one_route(&up), "access_log: { path: \"-\" }\n").start();
    let sent = send_paths(&gw, "to-stdout", 3).await;

    // Whatever else stdout holds, the JSON lines are ours.
    let json_lines = |text: &str| -> Vec<Value> {
        text.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line {l:?}: {e}")))
            .collect()
    };
    let mut got = Vec::new();
    let held = wait_until(LOG_TIMEOUT, || {
        got = json_lines(&std::fs::read_to_string(gw.stdout_file()).unwrap_or_default());
        got.len() >= 3
    });
    assert!(held, "3 lines on stdout, got {got:#?}\n{}", gw.logs());
    assert_eq!(paths(&got), sent);
    for line in &got {
        assert_eq!(line["route"], "all");
        assert_eq!(line["upstream_group"], "stable");
        assert_eq!(line["status"], 200);
    }
}

#[tokio::test]
async fn without_an_access_log_section_nothing_is_logged() {
    let up = Upstream::start("stable");
    let gw = Dyegate::start(&one_route(&up));
    send_paths(&gw, "quiet", 3).await;
    let m = gw
        .wait_for_metrics(METRICS_TIMEOUT, "3 requests counted", |m| {
            m.sum("dyegate_requests_total", &[]) >= 3.0
        })
        .await;
    assert_eq!(m.value("dyegate_access_log_dropped_total", &[]), 0.0);
    let stdout = std::fs::read_to_string(gw.stdout_file()).unwrap_or_default();
    assert!(
        !stdout.lines().any(|l| l.starts_with('{')),
        "stdout: {stdout}"
    );

    // logrotate's postrotate may send SIGUSR1 to a gateway that logs nothing: no harm done.
    sigusr1(&gw);
    send_paths(&gw, "after-usr1", 1).await;
    gw.wait_for_metrics(METRICS_TIMEOUT, "the request after SIGUSR1 counted", |m| {
        m.sum("dyegate_requests_total", &[]) >= 4.0
    })
    .await;
}

/// A log whose file cannot be opened (its directory is a regular file) drops every line and
/// counts it; once the cause is gone, SIGUSR1 makes the gateway write again.
#[tokio::test]
async fn lines_that_cannot_be_written_are_counted_as_dropped() {
    let up = Upstream::start("stable");
    let config = config_with(
        &one_route(&up),
        "access_log: { path: blocked/access.log }\n",
    );
    config.write("blocked", "a file where the log's directory should be\n");
    let gw = config.start();

    send_paths(&gw, "blocked", 5).await;
    let m = gw
        .wait_for_metrics(METRICS_TIMEOUT, "5 lines counted as dropped", |m| {
            m.get("dyegate_access_log_dropped_total", &[]) >= Some(5.0)
        })
        .await;
    assert_eq!(m.value("dyegate_access_log_dropped_total", &[]), 5.0);
    assert_eq!(m.sum("dyegate_requests_total", &[]), 5.0);

    std::fs::remove_file(gw.config().path("blocked")).expect("removing the blocker");
    sigusr1(&gw);
    let log = gw.config().path("blocked/access.log");
    assert!(
        wait_until(LOG_TIMEOUT, || log.exists()),
        "SIGUSR1 did not create {}\n{}",
        log.display(),
        gw.logs()
    );
    let after = send_paths(&gw, "reopened", 2).await;
    let got = wait_lines(&gw, &log, 2);
    assert_eq!(paths(&got), after);
    let m = gw.metrics().await;
    assert_eq!(m.value("dyegate_access_log_dropped_total", &[]), 5.0);
}

/// A writer stuck on its file (here: a FIFO nobody reads, whose open blocks) holds `queue`
/// lines; every line beyond is dropped and counted, and requests never wait for it.
#[tokio::test]
async fn a_stuck_writer_drops_and_counts_lines_without_stalling_requests() {
    const QUEUE: usize = 4;
    const SENT: usize = 20;
    let up = Upstream::start("stable");
    let config = config_with(
        &one_route(&up),
        &format!("access_log: {{ path: access.fifo, queue: {QUEUE} }}\n"),
    );
    let fifo = config.path("access.fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("running mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let gw = config.start();

    let started = std::time::Instant::now();
    send_paths(&gw, "stuck", SENT).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "{SENT} requests took {took:?}"
    );

    let dropped = (SENT - QUEUE) as f64;
    let m = gw
        .wait_for_metrics(METRICS_TIMEOUT, "dropped lines counted", |m| {
            m.get("dyegate_access_log_dropped_total", &[]) >= Some(dropped)
        })
        .await;
    assert_eq!(m.value("dyegate_access_log_dropped_total", &[]), dropped);
    assert_eq!(m.sum("dyegate_requests_total", &[]), SENT as f64);

    // Once something reads the FIFO, the queued lines come out: the first QUEUE requests.
    let got = read_fifo_lines(fifo, QUEUE);
    let want: BTreeSet<String> = (0..QUEUE).map(|i| format!("/stuck-{i}")).collect();
    assert_eq!(paths(&got), want);
}

/// Opens `fifo` for reading (which lets the blocked writer's open finish) and reads `n` lines,
/// with a deadline.
fn read_fifo_lines(fifo: PathBuf, n: usize) -> Vec<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok(file) = std::fs::File::open(&fifo) else {
            return;
        };
        for line in BufReader::new(file).lines().take(n) {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut text = String::new();
    for i in 0..n {
        let line = rx
            .recv_timeout(LOG_TIMEOUT)
            .unwrap_or_else(|_| panic!("line {i} of {n} never came out of the FIFO: {text}"));
        text.push_str(&line);
        text.push('\n');
    }
    parse_lines(&text, "access.fifo")
}
