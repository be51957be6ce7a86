//! Versions, rollback, no-ops, history across restarts and the audit log, end to end: what an
//! operator does after a reload, through the admin API, the CLI and the state dir.

use std::time::Duration;

use dyegate_suite::{upstream_groups, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;
use serde_json::{json, Value};

const SETTLE: Duration = Duration::from_secs(5);

/// Three upstreams and routes.yaml texts sending everything to one of them.
struct Fixture {
    blue: Upstream,
    green: Upstream,
    red: Upstream,
}

impl Fixture {
    fn new() -> Self {
        Self {
            blue: Upstream::start("blue"),
            green: Upstream::start("green"),
            red: Upstream::start("red"),
        }
    }

    fn routes_to(&self, group: &str) -> String {
        format!(
            "{}routes:\n  - name: all\n    split: [{{ upstream: {group}, weight: 1 }}]\n",
            upstream_groups(&[
                ("blue", &self.blue),
                ("green", &self.green),
                ("red", &self.red)
            ])
        )
    }
}

async fn answered_by(gw: &Dyegate) -> String {
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    resp.upstream()
        .expect("x-upstream on a proxied answer")
        .to_owned()
}

/// Writes routes.yaml and waits until `/status` runs `version`.
async fn edit(gw: &Dyegate, routes: &str, version: u64) {
    gw.config().write("routes.yaml", routes);
    gw.wait_for_status(SETTLE, &format!("version {version}"), |s| {
        s["version"] == version
    })
    .await;
}

/// The version numbers `GET /versions` lists, oldest first, and the active one.
async fn versions(gw: &Dyegate) -> (Vec<u64>, u64) {
    let list = gw.admin_get("/versions").await;
    let numbers = list["versions"]
        .as_array()
        .expect("a versions array")
        .iter()
        .map(|v| v["version"].as_u64().expect("a version number"))
        .collect();
    (numbers, list["active"].as_u64().expect("an active version"))
}

#[tokio::test]
async fn rollback_by_api_and_cli_and_forward_again() {
    let fx = Fixture::new();
    let gw = GatewayConfig::new(&fx.routes_to("blue")).start();
    edit(&gw, &fx.routes_to("green"), 2).await;
    assert_eq!(answered_by(&gw).await, "green");

    // API: back to version 1. The swap is done when the answer comes: no polling needed.
    let (code, report) = gw.admin_post("/rollback", Some(r#"{"to": 1}"#)).await;
    assert_eq!(code, StatusCode::OK, "{report:#}");
    assert_eq!(report["result"], "rollback", "{report:#}");
    assert_eq!(report["trigger"], "rollback", "{report:#}");
    assert_eq!(report["version_before"], 2, "{report:#}");
    assert_eq!(report["version_after"], 3, "{report:#}");
    assert_eq!(report["rollback_to"], 1, "{report:#}");
    assert_eq!(
        report["diff"],
        json!(["all: split blue added 1 (100%), green removed (was 1, 100%)"])
    );
    let micros = report["swap_micros"].as_u64().expect("swap_micros");
    assert!(micros < 100_000, "rollback took {micros} µs");
    assert_eq!(answered_by(&gw).await, "blue");

    let status = gw.status().await;
    assert_eq!(status["version"], 3, "{status:#}");
    assert_eq!(status["trigger"], "rollback", "{status:#}");
    assert_eq!(status["matches_file"], false, "{status:#}");

    let list = gw.admin_get("/versions").await;
    assert_eq!(list["active"], 3);
    let v3 = &list["versions"][2];
    assert_eq!(
        (
            &v3["version"],
            &v3["trigger"],
            &v3["rollback_to"],
            &v3["rollback_from"],
            &v3["active"]
        ),
        (
            &json!(3),
            &json!("rollback"),
            &json!(1),
            &json!(2),
            &json!(true)
        ),
        "{list:#}"
    );
    assert_eq!(v3["sha256"], list["versions"][0]["sha256"], "{list:#}");

    // CLI: forward to version 2 again; the running table matches the file once more.
    let out = gw.config().cli(&["rollback", "--to", "2"]);
    assert_eq!(out.code, Some(0), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).expect("the CLI prints the report");
    assert_eq!(report["version_after"], 4, "{out}");
    assert_eq!(answered_by(&gw).await, "green");
    let status = gw.status().await;
    assert_eq!(status["matches_file"], true, "{status:#}");

    // CLI without --to: the version that ran before (3, which restored 1).
    let out = gw.config().cli(&["rollback"]);
    assert_eq!(out.code, Some(0), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).expect("the CLI prints the report");
    assert_eq!(report["rollback_to"], 3, "{out}");
    assert_eq!(answered_by(&gw).await, "blue");

    // A version that is not kept: refused, nothing changes.
    let (code, body) = gw.admin_post("/rollback", Some(r#"{"to": 99}"#)).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "error": "version 99 is not kept (kept: 1, 2, 3, 4, 5)" })
    );
    let out = gw.config().cli(&["rollback", "--to", "99"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains("dyegate: rollback refused: version 99 is not kept (kept: 1, 2, 3, 4, 5)"),
        "{out}"
    );
    assert_eq!(gw.version().await, 5);

    // The next change of the file applies as usual.
    edit(&gw, &fx.routes_to("red"), 6).await;
    assert_eq!(answered_by(&gw).await, "red");
    let status = gw.status().await;
    assert_eq!(status["trigger"], "file", "{status:#}");
    assert_eq!(status["matches_file"], true, "{status:#}");
}

#[tokio::test]
async fn identical_content_is_a_no_op() {
    let fx = Fixture::new();
    let routes = fx.routes_to("blue");
    let gw = GatewayConfig::new(&routes).start();

    // The file is written again (new mtime, same bytes): the watcher looks, nothing changes.
    gw.config().write("routes.yaml", &routes);
    let status = gw
        .wait_for_status(SETTLE, "a no-op file reload", |s| s["reloads"]["noop"] == 1)
        .await;
    assert_eq!(status["version"], 1, "{status:#}");
    assert_eq!(status["trigger"], "startup", "{status:#}");

    // And through the API.
    let (code, report) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{report:#}");
    assert_eq!(report["result"], "no_op", "{report:#}");
    assert_eq!(report["version_after"], 1, "{report:#}");

    assert_eq!(versions(&gw).await, (vec![1], 1));
    let results: Vec<(Value, Value, Value, Value)> = gw
        .config()
        .audit_records()
        .iter()
        .map(|r| {
            (
                r["trigger"].clone(),
                r["result"].clone(),
                r["version_before"].clone(),
                r["version_after"].clone(),
            )
        })
        .collect();
    assert_eq!(
        results,
        vec![
            (json!("startup"), json!("applied"), json!(0), json!(1)),
            (json!("file"), json!("no_op"), json!(1), json!(1)),
            (json!("api"), json!("no_op"), json!(1), json!(1)),
        ]
    );
}

#[tokio::test]
async fn history_survives_a_restart() {
    let fx = Fixture::new();
    let gw = GatewayConfig::new(&fx.routes_to("blue")).start();
    edit(&gw, &fx.routes_to("green"), 2).await;

    // Same file: the running version goes on under its number.
    let gw = gw.restart();
    let status = gw.status().await;
    assert_eq!(status["version"], 2, "{status:#}");
    assert_eq!(status["trigger"], "file", "{status:#}");
    assert_eq!(versions(&gw).await, (vec![1, 2], 2));
    assert_eq!(answered_by(&gw).await, "green");

    // Numbers continue, and a version from before the restart (only its text is kept) can be
    // restored.
    edit(&gw, &fx.routes_to("red"), 3).await;
    let (code, report) = gw.admin_post("/rollback", Some(r#"{"to": 1}"#)).await;
    assert_eq!(code, StatusCode::OK, "{report:#}");
    assert_eq!(report["version_after"], 4, "{report:#}");
    assert_eq!(answered_by(&gw).await, "blue");
    let source = gw.admin_get("/versions/1").await;
    assert_eq!(source["source"], fx.routes_to("blue"));

    // A file changed while the gateway was down: a new version, trigger `startup`.
    let cfg = gw.stop();
    cfg.write("routes.yaml", &fx.routes_to("green"));
    let gw = cfg.start();
    let status = gw.status().await;
    assert_eq!(status["version"], 5, "{status:#}");
    assert_eq!(status["trigger"], "startup", "{status:#}");
    assert_eq!(versions(&gw).await, (vec![1, 2, 3, 4, 5], 5));
    assert_eq!(answered_by(&gw).await, "green");
}

#[tokio::test]
async fn history_keeps_the_configured_number_of_versions() {
    let fx = Fixture::new();
    let gw = GatewayConfig::new(&fx.routes_to("blue"))
        .with_gateway_extra("reload: { history: 3 }\n")
        .start();
    for (version, group) in [(2, "green"), (3, "red"), (4, "blue"), (5, "green")] {
        edit(&gw, &fx.routes_to(group), version).await;
    }
    assert_eq!(versions(&gw).await, (vec![3, 4, 5], 5));
    let kept: Vec<String> = std::fs::read_dir(gw.config().path("state/versions"))
        .expect("state/versions")
        .map(|e| {
            e.expect("a dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut kept = kept;
    kept.sort();
    assert_eq!(kept, ["3.yaml", "4.yaml", "5.yaml"]);
    let (code, body) = gw.admin(http::Method::GET, "/versions/1", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({ "error": "version 1 is not kept" }));
}

/// Checks the fields every audit record has, whatever its result.
fn assert_well_formed(record: &Value) {
    let object = record.as_object().expect("an object");
    for field in [
        "time",
        "trigger",
        "result",
        "version_before",
        "version_after",
        "sha256",
        "diff_summary",
        "errors",
    ] {
        assert!(object.contains_key(field), "no {field}: {record}");
    }
    let time = record["time"].as_str().expect("time is text");
    assert!(
        time.len() == "2026-01-01T00:00:00.000Z".len()
            && time.ends_with('Z')
            && &time[10..11] == "T",
        "time {time:?} is not RFC 3339 UTC with milliseconds"
    );
    let sha = record["sha256"].as_str().expect("sha256 is text");
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "sha256 {sha:?}"
    );
    assert!(record["errors"].is_array(), "{record}");
}

#[tokio::test]
async fn the_audit_log_has_one_well_formed_line_per_attempt() {
    let fx = Fixture::new();
    let gw = GatewayConfig::new(&fx.routes_to("blue")).start();

    edit(&gw, &fx.routes_to("green"), 2).await; // applied (file)
    gw.config().write("routes.yaml", &fx.routes_to("green"));
    gw.wait_for_status(SETTLE, "no-op", |s| s["reloads"]["noop"] == 1)
        .await; // no_op (file)
    gw.config().write(
        "routes.yaml",
        &fx.routes_to("green")
            .replace("green, weight", "grey, weight"),
    );
    gw.wait_for_status(SETTLE, "failure", |s| s["reloads"]["failed"] == 1)
        .await; // failed (file)
    edit(&gw, &fx.routes_to("red"), 3).await; // applied (file)
    let (code, noop) = gw.admin_post("/reload", None).await; // no_op (api)
    assert_eq!(code, StatusCode::OK, "{noop:#}");
    let (code, rollback) = gw.admin_post("/rollback", Some("{}")).await; // rollback (api)
    assert_eq!(code, StatusCode::OK, "{rollback:#}");

    let records = gw.config().audit_records();
    let status = gw.status().await;
    let r = &status["reloads"];
    let attempts = 1 + ["applied", "noop", "failed", "rollback"]
        .iter()
        .map(|k| r[k].as_u64().expect("a counter"))
        .sum::<u64>();
    assert_eq!(records.len() as u64, attempts, "{records:#?}\n{status:#}");
    for record in &records {
        assert_well_formed(record);
    }

    let summary: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["trigger"].as_str().expect("trigger"),
                r["result"].as_str().expect("result"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("startup", "applied"),
            ("file", "applied"),
            ("file", "no_op"),
            ("file", "failed"),
            ("file", "applied"),
            ("api", "no_op"),
            ("rollback", "rollback"),
        ]
    );

    let applied = &records[1];
    assert_eq!(applied["version_before"], 1);
    assert_eq!(applied["version_after"], 2);
    assert_eq!(
        applied["diff_summary"],
        "routes +0 -0 ~1, upstreams +0 -0 ~0"
    );
    assert_eq!(applied["errors"], json!([]));
    assert!(applied.get("client").is_none(), "{applied}");
    assert!(applied["swap_micros"].is_u64(), "{applied}");

    let failed = &records[3];
    assert_eq!(failed["version_before"], 2);
    assert_eq!(failed["version_after"], 2);
    assert_eq!(failed["diff_summary"], Value::Null);
    assert_eq!(
        failed["errors"],
        json!([format!(
            "{}:7:25: routes[0].split[0].upstream: found unknown upstream \"grey\", expected one of `blue`, `green`, `red`",
            gw.config().routes_file().display()
        )])
    );

    // API calls name the client; the rollback (default: the version before) names the one it
    // restored.
    for r in &records[5..] {
        let client = r["client"].as_str().unwrap_or_default();
        assert!(client.starts_with("127.0.0.1:"), "no client address: {r}");
    }
    let last = &records[6];
    assert_eq!(
        (
            &last["version_before"],
            &last["version_after"],
            &last["rollback_to"]
        ),
        (&json!(3), &json!(4), &json!(2)),
        "{last}"
    );
    assert_eq!(last["sha256"], records[1]["sha256"], "{last}");
}

#[tokio::test]
async fn the_audit_log_is_reopened_after_logrotate_moves_it() {
    let fx = Fixture::new();
    let gw = GatewayConfig::new(&fx.routes_to("blue")).start();
    edit(&gw, &fx.routes_to("green"), 2).await;
    // The swap is visible before commit appends its audit line: rotate after it.
    assert!(dyegate_suite::wait_until(SETTLE, || gw
        .config()
        .audit_records()
        .len()
        == 2));

    let rotated = gw.config().path("state/audit.log.1");
    std::fs::rename(gw.config().audit_log(), &rotated).expect("rotating the audit log");
    edit(&gw, &fx.routes_to("red"), 3).await;

    let old = std::fs::read_to_string(&rotated).expect("the rotated log");
    assert_eq!(old.lines().count(), 2, "{old}");
    let new = gw.config().audit_records();
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(
        (&new[0]["result"], &new[0]["version_after"]),
        (&json!("applied"), &json!(3))
    );
}
