//! gateway.yaml's telemetry keys on SIGHUP and `POST /reload` (issue 26): `tracing.sample_ratio`,
//! `access_log` (on, off, moved; its queue waits for an upgrade) and `log.level` apply live;
//! `RUST_LOG`, when set, keeps deciding the log level and the key is named as not applied.

use std::path::Path;
use std::time::Duration;

use dyegate_suite::{wait_until, wait_until_async, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;
use serde_json::json;

const SETTLE: Duration = Duration::from_secs(15);

fn routes(up: &Upstream) -> String {
    format!(
        "upstreams:\n  s: {{ targets: [\"{}\"] }}\nroutes:\n  - name: r\n    split: [{{ upstream: s, weight: 1 }}]\n",
        up.target()
    )
}

/// The `path` of every line of the access log `file` (none while it does not exist).
/// The paths logged in `file`, sorted: a request's line is queued after its client has the
/// answer, so the next request's line may be written first (seen 1 run in 5: /a2 before /a1);
/// which file each line reaches is what these tests check.
fn logged_paths(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut paths: Vec<String> = (text.lines())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {l}", file.display()));
            v["path"].as_str().expect("path").to_string()
        })
        .collect();
    paths.sort();
    paths
}

/// Sends `GET path` and expects 200; returns whether its new trace was sampled (the last field
/// of `traceresponse`).
async fn sampled(gw: &Dyegate, path: &str) -> bool {
    let resp = Req::get(path).send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let tr = resp.header("traceresponse").expect("traceresponse is on");
    match tr.rsplit('-').next() {
        Some("01") => true,
        Some("00") => false,
        _ => panic!("traceresponse {tr}"),
    }
}

/// Rewrites gateway.yaml as the suite's plus `extra` and re-reads it through `POST /reload`;
/// returns the answer's `gateway` part.
async fn reload_with(gw: &Dyegate, base: &str, extra: &str) -> serde_json::Value {
    gw.config().write("gateway.yaml", &format!("{base}{extra}"));
    let (code, answer) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{answer:#}");
    answer["gateway"].clone()
}

#[tokio::test]
async fn the_sample_ratio_and_the_access_log_apply_live() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&routes(&up))
        .gateway_extra("traceresponse: true\nreload: { watch: false }")
        .start();
    let base = gw.config().gateway_text();
    let (a, b, c) = (
        gw.config().path("access-a.log"),
        gw.config().path("logs/access-b.log"),
        gw.config().path("access-c.log"),
    );
    assert!(!sampled(&gw, "/before").await, "ratio 0 by default");

    // SIGHUP: both keys applied, said in the log; the log turned on writes through the queue
    // the process has (allocated at start), so its own `queue` waits for an upgrade.
    gw.config().write(
        "gateway.yaml",
        &format!(
            "{base}tracing: {{ sample_ratio: 1 }}\naccess_log: {{ path: access-a.log, queue: 100 }}\n"
        ),
    );
    gw.signal(libc::SIGHUP);
    let file = gw.config().gateway_file().display().to_string();
    for line in [
        format!("gateway.yaml {file}: applied access_log, tracing.sample_ratio"),
        format!("gateway.yaml {file}: access_log.queue changed, not applied until `dyegate upgrade` (or a restart)"),
    ] {
        assert!(
            wait_until(SETTLE, || gw.logs().contains(&line)),
            "{line}\n{}",
            gw.logs()
        );
    }
    for i in 0..5 {
        assert!(
            sampled(&gw, &format!("/a{i}")).await,
            "every new trace sampled"
        );
    }
    // A request's line is queued in its last phase, after the client has its answer: waited
    // for in the file before each switch (the order of queued lines and a switch is pinned by
    // the unit tests of telemetry/access_log.rs).
    let a_lines = ["/a0", "/a1", "/a2", "/a3", "/a4"];
    assert!(
        wait_until(SETTLE, || logged_paths(&a) == a_lines),
        "{:?}",
        logged_paths(&a)
    );

    // Moved: the next line goes to the new file (a directory of its own, made); the old one
    // keeps its lines; the queue's size waits for an upgrade.
    let answer = reload_with(
        &gw,
        &base,
        "tracing: { sample_ratio: 1 }\naccess_log: { path: logs/access-b.log, queue: 100 }\n",
    )
    .await;
    assert_eq!(
        answer,
        json!({ "file": file, "applied_live": ["access_log.path"], "needs_upgrade": ["access_log.queue"], "errors": [] })
    );
    assert!(sampled(&gw, "/b").await);
    assert!(
        wait_until(SETTLE, || logged_paths(&b) == ["/b"]),
        "{:?}\n{}",
        logged_paths(&b),
        gw.logs()
    );
    assert_eq!(logged_paths(&a), a_lines);

    // A file that cannot be opened: nothing changes, and the answer says why.
    let blocked = gw.config().path("gateway.yaml/x.log");
    let answer = reload_with(
        &gw,
        &base,
        "tracing: { sample_ratio: 0 }\naccess_log: { path: gateway.yaml/x.log, queue: 100 }\n",
    )
    .await;
    assert_eq!(
        answer["applied_live"],
        json!(["tracing.sample_ratio"]),
        "{answer:#}"
    );
    let warning = answer["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.starts_with(&format!(
            "access_log.path not applied, the access log is as it was: cannot open {}: ",
            blocked.display()
        )),
        "{answer:#}"
    );
    assert!(!sampled(&gw, "/b2").await, "ratio 0 again");
    assert!(
        wait_until(SETTLE, || logged_paths(&b) == ["/b", "/b2"]),
        "{:?}",
        logged_paths(&b)
    );

    // Off: a request made then is not logged (the file it would have gone to is closed and
    // stays as it was); on again elsewhere: the next one is.
    let answer = reload_with(&gw, &base, "tracing: { sample_ratio: 0 }\n").await;
    assert_eq!(answer["applied_live"], json!(["access_log"]), "{answer:#}");
    assert!(!sampled(&gw, "/off").await);
    let answer = reload_with(
        &gw,
        &base,
        "tracing: { sample_ratio: 0 }\naccess_log: { path: access-c.log }\n",
    )
    .await;
    assert_eq!(answer["applied_live"], json!(["access_log"]), "{answer:#}");
    assert_eq!(answer["needs_upgrade"], json!([]), "{answer:#}");
    assert!(!sampled(&gw, "/c").await);
    assert!(
        wait_until(SETTLE, || logged_paths(&c).contains(&"/c".to_string())),
        "{:?}\n{}",
        logged_paths(&c),
        gw.logs()
    );
    assert_eq!(logged_paths(&b), ["/b", "/b2"]);
    assert_eq!(logged_paths(&a), a_lines);
}

/// Pingora's debug line for every request it reads (pingora-proxy 0.9): seen only at `debug`.
const PINGORA_DEBUG: &str = "Successfully get a new request";

#[tokio::test]
async fn the_log_level_applies_live() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&routes(&up))
        .gateway_extra("reload: { watch: false }\nlog: { level: warn }")
        .with_env("RUST_LOG", None)
        .start();
    let base = gw
        .config()
        .gateway_text()
        .replace("log: { level: warn }\n", "");
    // At warn: no INFO line, not even of a reload answered (logged before its answer).
    let (code, answer) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{answer:#}");
    assert_eq!(Req::get("/").send(gw.addr()).await.status, StatusCode::OK);
    let stderr = gw.stderr();
    assert!(!stderr.contains(" INFO "), "{stderr}");
    assert!(!stderr.contains(PINGORA_DEBUG), "{stderr}");

    let answer = reload_with(&gw, &base, "log: { level: debug }\n").await;
    assert_eq!(answer["applied_live"], json!(["log.level"]), "{answer:#}");
    let file = gw.config().gateway_file().display().to_string();
    assert!(
        gw.stderr()
            .contains(&format!("gateway.yaml {file}: applied log.level")),
        "{}",
        gw.logs()
    );
    let seen = wait_until_async(SETTLE, || async {
        let _ = Req::get("/").send(gw.addr()).await;
        gw.stderr().contains(PINGORA_DEBUG)
    })
    .await;
    assert!(seen, "debug lines of every crate at debug\n{}", gw.logs());

    // Back to the default (info): the file without `log`.
    let answer = reload_with(&gw, &base, "").await;
    assert_eq!(answer["applied_live"], json!(["log.level"]), "{answer:#}");
}

#[tokio::test]
async fn rust_log_decides_and_the_key_is_named_as_not_applied() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&routes(&up))
        .gateway_extra("reload: { watch: false }\nlog: { level: warn }")
        .with_env("RUST_LOG", Some("info"))
        .start();
    let base = gw
        .config()
        .gateway_text()
        .replace("log: { level: warn }\n", "");
    let stderr = gw.stderr();
    assert!(
        stderr.contains(
            "RUST_LOG is set and decides the log level: gateway.yaml log.level (warn) is ignored"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(" INFO "), "RUST_LOG=info wins: {stderr}");

    let answer = reload_with(&gw, &base, "log: { level: debug }\n").await;
    let file = gw.config().gateway_file().display().to_string();
    assert_eq!(
        answer,
        json!({
            "file": file,
            "applied_live": [],
            "needs_upgrade": [],
            "errors": [],
            "warnings": ["log.level (debug) not applied: RUST_LOG is set and decides the log level"]
        })
    );
    assert!(
        gw.stderr().contains(&format!(
            "gateway.yaml {file}: log.level (debug) not applied: RUST_LOG is set and decides the log level"
        )),
        "{}",
        gw.logs()
    );
}
