//! The admin commands as people and scripts use them (issue 26): tables on a terminal, JSON in
//! a pipe or with `-o json`, the same facts in both; the `--admin` forms; a token from
//! `--token-file`, `DYEGATE_ADMIN_TOKEN` or gateway.yaml, in that order; `versions N`; a
//! rejected reload's located lines; the rollback warning and `rollback --write-file`; shares in
//! the diff; the age of the last error; exit codes 0, 1 and 2.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use dyegate_suite::etcd::fleet::Fleet;
use dyegate_suite::gateway::{dyegate_cli_env, dyegate_cli_tty};
use dyegate_suite::rollout::{routes as rollout_routes, upstreams as rollout_upstreams};
use dyegate_suite::{
    free_port, upstream_groups, wait_until, CliOutput, Dyegate, GatewayConfig, Upstream,
};
use serde_json::Value;

const NO_WATCH: &str = "reload: { watch: false }\n";

/// Generous for a debug build on a loaded two-core machine.
const SETTLE: Duration = Duration::from_secs(30);

struct Shop {
    stable: Upstream,
    canary: Upstream,
}

impl Shop {
    fn new() -> Shop {
        Shop {
            stable: Upstream::start("stable"),
            canary: Upstream::start("canary"),
        }
    }

    /// A gateway on `shop` at 95/5 whose routes file is not watched (changes land by reload).
    fn unwatched_at_95_5() -> (Shop, Dyegate) {
        let shop = Shop::new();
        let gw = GatewayConfig::new(&shop.routes(95, 5))
            .with_gateway_extra(NO_WATCH)
            .start();
        (shop, gw)
    }

    /// routes.yaml: route `shop` splitting `stable`/`canary` by the weights given.
    fn routes(&self, stable: i64, canary: i64) -> String {
        format!(
            "{}routes:\n  - name: shop\n    dye: {{ tags: {{ canary: shop-canary }} }}\n    split:\n      - {{ upstream: shop-stable, weight: {stable} }}\n      - {{ upstream: shop-canary, weight: {canary} }}\n",
            upstream_groups(&[("shop-stable", &self.stable), ("shop-canary", &self.canary)])
        )
    }
}

/// The arguments plus `-c <dir>/gateway.yaml`.
fn with_config(gw: &Dyegate, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.push("-c".into());
    all.push(gw.config().gateway_file().display().to_string());
    all
}

/// `dyegate ARGS -c gateway.yaml` on a pseudo-terminal; the text without `\r`.
fn on_terminal(gw: &Dyegate, args: &[&str]) -> CliOutput {
    let all = with_config(gw, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut out = dyegate_cli_tty(gw.config().dir(), &all);
    out.stdout = out.stdout.replace('\r', "");
    out
}

/// `dyegate ARGS -c gateway.yaml` with stdout a pipe, expected to succeed with JSON.
fn piped_json(gw: &Dyegate, args: &[&str]) -> Value {
    let out = gw.config().cli(args);
    assert_eq!(out.code, Some(0), "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// Text of a JSON scalar as the tables show it.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Panics unless `text` shows every value of `facts` (name, JSON value).
fn assert_facts(text: &str, facts: &[(&str, String)]) {
    for (name, value) in facts {
        assert!(
            text.contains(value.as_str()),
            "{name} = {value} not shown in\n{text}"
        );
    }
}

#[test]
fn on_a_terminal_tables_in_a_pipe_json_and_both_state_the_same_facts() {
    let (shop, gw) = Shop::unwatched_at_95_5();
    gw.config().write("routes.yaml", &shop.routes(80, 20));
    assert_eq!(gw.config().cli(&["reload"]).code, Some(0));

    let status = piped_json(&gw, &["status"]);
    let table = on_terminal(&gw, &["status"]);
    assert_eq!(table.code, Some(0), "{table}");
    assert!(!table.stdout.contains('{'), "{table}");
    assert_facts(
        &table.stdout,
        &[
            (
                "version",
                format!("version       {}, applied", status["version"]),
            ),
            ("sha256", shown(&status["sha256"])),
            ("loaded_at", shown(&status["loaded_at"])),
            ("routes_file", shown(&status["routes_file"])),
            ("routes, upstreams", "1 route, 2 upstreams".into()),
            (
                "reloads",
                "1 applied, 0 no-op, 0 failed, 0 rollbacks".into(),
            ),
            ("audit_log", shown(&status["audit_log"])),
            ("pid", format!("pid {}", status["pid"])),
        ],
    );
    // -o table in a pipe is the terminal's form; -o json on a terminal the pipe's.
    let asked = gw.config().cli(&["status", "-o", "table"]);
    assert!(
        asked.stdout.starts_with("version       2, applied"),
        "{asked}"
    );
    let json = on_terminal(&gw, &["status", "-o", "json"]);
    let reparsed: Value =
        serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(reparsed["sha256"], status["sha256"]);

    let versions = piped_json(&gw, &["versions"]);
    let table = on_terminal(&gw, &["versions"]).stdout;
    for v in versions["versions"].as_array().into_iter().flatten() {
        let sha = shown(&v["sha256"]);
        assert_facts(
            &table,
            &[
                ("version", format!("  {}  ", v["version"])),
                ("loaded_at", shown(&v["loaded_at"])),
                ("trigger", shown(&v["trigger"])),
                ("sha256", sha[..12].to_string()),
            ],
        );
    }
    assert!(
        table.contains(&format!("*  {}  ", versions["active"])),
        "{table}"
    );

    let upstreams = piped_json(&gw, &["upstreams"]);
    let table = on_terminal(&gw, &["upstreams"]).stdout;
    for g in upstreams["groups"].as_array().into_iter().flatten() {
        assert_facts(
            &table,
            &[("group", format!("{}: no health check", shown(&g["name"])))],
        );
        for t in g["targets"].as_array().into_iter().flatten() {
            assert_facts(
                &table,
                &[("addr", shown(&t["addr"])), ("state", shown(&t["state"]))],
            );
        }
    }
}

#[tokio::test]
async fn a_rollout_reads_as_a_table_and_its_step_diffs_in_percent() {
    let (stable, canary) = rollout_upstreams();
    let fields = "steps: [10, 50, 100], step_ms: 1000, pause_before: [10], gates: { window_ms: 1000, min_requests: 5, max_error_rate: 0.05 }";
    let gw = GatewayConfig::new(&rollout_routes(&stable, &canary, fields, ""))
        .with_gateway_extra(NO_WATCH)
        .start();
    // Awaiting approval before its first step: promote, then pause there (a state that holds).
    dyegate_suite::rollout::wait_rollout(&gw, SETTLE, "awaiting approval", |r| {
        r["state"] == "awaiting_approval"
    })
    .await;
    let promoted = on_terminal(&gw, &["rollout", "promote", "shop"]);
    assert_eq!(promoted.code, Some(0), "{promoted}");
    // Progressing, or waiting for traffic if judged in between.
    assert!(promoted.stdout.starts_with("shop: "), "{promoted}");
    assert!(
        promoted
            .stdout
            .contains(", step 1 of 3 (steps 10%, 50%, 100%), canary canary\n"),
        "{promoted}"
    );
    assert_eq!(gw.config().cli(&["rollout", "pause", "shop"]).code, Some(0));

    let json = piped_json(&gw, &["rollout", "shop"]);
    let table = on_terminal(&gw, &["rollout", "shop"]).stdout;
    assert_facts(
        &table,
        &[
            ("route/state/step", "shop: paused, step 1 of 3".into()),
            ("canary", format!("canary {}", shown(&json["canary"]))),
            (
                "canary_share",
                "canary share 10% (in the table 10%, in the file 0%)".into(),
            ),
            ("since", shown(&json["since"])),
            ("moved_by", format!("moved by {}", shown(&json["moved_by"]))),
        ],
    );
    for m in json["history"].as_array().into_iter().flatten() {
        assert_facts(
            &table,
            &[
                ("history.at", shown(&m["at"])),
                ("history.by", shown(&m["by"])),
            ],
        );
    }
    let all = on_terminal(&gw, &["rollout"]).stdout;
    assert!(
        all.starts_with(
            "ROUTE  STATE   STEP    SHARE  CANARY\nshop   paused  1 of 3  10%    canary\n"
        ),
        "{all}"
    );

    // The step's version: its diff in shares, never the rollout's units (9000/1000).
    let step = (gw.config().audit_records().into_iter())
        .find(|r| r["trigger"] == "rollout" && r["step"] == 1)
        .unwrap_or_else(|| panic!("no rollout step in the audit log"));
    assert_eq!(
        step["diff"],
        serde_json::json!(["shop: split stable 100% -> 90%, canary 0% -> 10%"]),
        "{step:#}"
    );
}

#[test]
fn admin_addresses_as_host_port_or_http_urls_and_the_exit_codes() {
    let shop = Shop::new();
    let gw = GatewayConfig::new(&shop.routes(95, 5)).start();
    let port = gw.admin_addr().port();
    // An empty dir: no gateway.yaml is read when --admin is given and no token is needed.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| dyegate_cli_env(elsewhere.path(), args, &[]);
    for admin in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}/"),
    ] {
        let out = run(&["status", "--admin", &admin, "-o", "json"]);
        assert_eq!(out.code, Some(0), "--admin {admin}: {out}");
        let status: Value = serde_json::from_str(&out.stdout).expect("status JSON");
        assert_eq!(status["version"], 1, "{out}");
    }

    // Usage errors: exit 2, the message on stderr, nothing on stdout.
    let https = format!("https://127.0.0.1:{port}");
    for (args, message) in [
        (
            vec!["status", "--admin", https.as_str()],
            format!("dyegate: --admin: found \"{https}\", expected HOST:PORT, IP:PORT or http://HOST:PORT: the admin API has no TLS listener and this client speaks plain HTTP only (reach a remote gateway through an SSH tunnel, or use http:// on a trusted network)\n"),
        ),
        (
            vec!["status", "--admin", "localhost"],
            "dyegate: --admin: found \"localhost\", expected HOST:PORT, IP:PORT or http://HOST:PORT (a port is required; an IPv6 address goes in brackets)\n".to_string(),
        ),
        (
            vec!["rollout", "pause"],
            "dyegate: rollout pause: expected a route: dyegate rollout pause ROUTE\n".to_string(),
        ),
    ] {
        let out = run(&args);
        assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (Some(2), "", message.as_str()), "{args:?}: {out}");
    }
    let out = run(&["status", "--no-such-flag"]);
    assert_eq!(out.code, Some(2), "{out}");
    let out = run(&["versions", "two"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr
            .contains("found \"two\", expected a version number"),
        "{out}"
    );

    // A failed operation: exit 1.
    let nobody = format!("127.0.0.1:{}", free_port());
    let out = run(&["status", "--admin", &nobody]);
    out.assert_cannot_connect(&nobody);
}

#[test]
fn the_token_comes_from_the_file_then_the_environment_then_gateway_yaml() {
    const TOKEN: &str = "s3cret-token-26";
    let shop = Shop::new();
    let gw = GatewayConfig::new(&shop.routes(95, 5))
        .with_admin_token(TOKEN)
        .start();
    let admin = gw.admin_addr().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good-token");
    std::fs::write(&good, format!("{TOKEN}\n")).expect("token file");
    let bad = dir.path().join("bad-token");
    std::fs::write(&bad, "wrong\n").expect("token file");
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").expect("token file");
    let (good, bad, empty) = (
        good.display().to_string(),
        bad.display().to_string(),
        empty.display().to_string(),
    );
    let gateway = gw.config().gateway_file().display().to_string();
    let status = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["status", "-o", "json"];
        args.extend_from_slice(extra);
        let out = dyegate_cli_env(dir.path(), &args, env);
        assert!(
            !out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN),
            "{out}"
        );
        out
    };
    let env_good = [("DYEGATE_ADMIN_TOKEN", TOKEN)];
    let env_bad = [("DYEGATE_ADMIN_TOKEN", "wrong")];

    let out = status(&["--admin", &admin], &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.ends_with("GET /status: HTTP 401: missing or wrong bearer token; no token was sent (none in --token-file, DYEGATE_ADMIN_TOKEN or gateway.yaml)\n"), "{out}");
    assert_eq!(
        status(&["--admin", &admin, "--token-file", &good], &[]).code,
        Some(0)
    );
    assert_eq!(status(&["--admin", &admin], &env_good).code, Some(0));
    assert_eq!(status(&["-c", &gateway], &[]).code, Some(0));
    // The file before the environment, the environment before gateway.yaml.
    assert_eq!(
        status(&["--admin", &admin, "--token-file", &good], &env_bad).code,
        Some(0)
    );
    let out = status(&["--admin", &admin, "--token-file", &bad], &env_good);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .ends_with("; the token sent came from --token-file\n"),
        "{out}"
    );
    let out = status(&["-c", &gateway], &env_bad);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .ends_with("; the token sent came from DYEGATE_ADMIN_TOKEN\n"),
        "{out}"
    );
    assert_eq!(
        status(&["-c", &gateway], &[("DYEGATE_ADMIN_TOKEN", "")]).code,
        Some(0),
        "an empty variable is unset"
    );
    // An unusable file is a usage error.
    let out = status(&["--admin", &admin, "--token-file", &empty], &env_good);
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(
        out.stderr,
        format!("dyegate: --token-file {empty}: empty, expected the token\n")
    );
}

#[test]
fn versions_n_prints_that_versions_source() {
    let shop = Shop::new();
    let (v1, v2) = (shop.routes(95, 5), shop.routes(80, 20));
    let gw = GatewayConfig::new(&v1).with_gateway_extra(NO_WATCH).start();
    gw.config().write("routes.yaml", &v2);
    assert_eq!(gw.config().cli(&["reload"]).code, Some(0));

    let one = piped_json(&gw, &["versions", "1"]);
    assert_eq!(
        (one["version"].as_u64(), one["source"].as_str()),
        (Some(1), Some(v1.as_str()))
    );
    let table = on_terminal(&gw, &["versions", "1"]);
    assert_eq!(table.code, Some(0), "{table}");
    let (comment, source) = table.stdout.split_at(
        table
            .stdout
            .match_indices('\n')
            .nth(1)
            .map(|(i, _)| i + 1)
            .unwrap_or(0),
    );
    assert!(comment.starts_with("# version 1, applied "), "{table}");
    assert!(
        comment.ends_with(&format!("by startup\n# sha256 {}\n", shown(&one["sha256"]))),
        "{table}"
    );
    assert_eq!(source, v1);
    // The whole output is still a routes file: `dyegate check` takes it.
    let saved = gw.config().write("version-1.yaml", &table.stdout);
    let check = gw
        .config()
        .cli(&["check", saved.to_str().expect("utf-8 path")]);
    assert_eq!(check.code, Some(0), "{check}");

    let out = gw.config().cli(&["versions", "9"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .starts_with("dyegate: versions 9: version 9 is not kept"),
        "{out}"
    );
}

#[test]
fn a_rejected_reload_prints_located_lines_then_the_last_error_ages_and_is_fixed() {
    let (shop, gw) = Shop::unwatched_at_95_5();
    let routes = gw.config().routes_file().display().to_string();
    let bad = shop.routes(95, -5);
    gw.config().write("routes.yaml", &bad);
    let line = bad
        .lines()
        .position(|l| l.contains("weight: -5"))
        .expect("the line")
        + 1;
    let col = bad
        .lines()
        .nth(line - 1)
        .and_then(|l| l.find("-5"))
        .expect("the column")
        + 1;
    let located = format!(
        "{routes}:{line}:{col}: routes[0].split[1].weight: found -5, expected a whole number >= 0"
    );

    // On a terminal: the located lines, no JSON, exit 1.
    let out = on_terminal(&gw, &["reload"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(!out.stdout.contains('{'), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "dyegate: reload rejected, version 1 keeps serving; 1 error:\n{located}"
        )),
        "{out}"
    );
    // In a pipe: the report as JSON on stdout, the same lines on stderr.
    let out = gw.config().cli(&["reload"]);
    assert_eq!(out.code, Some(1), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).expect("report JSON");
    assert_eq!(report["result"], "failed");
    assert_eq!(
        out.stderr,
        format!("dyegate: reload rejected, version 1 keeps serving; 1 error:\n{located}\n")
    );

    let status = piped_json(&gw, &["status"]);
    assert_eq!(status["last_error"]["attempts_since"], 0, "{status:#}");
    assert_eq!(status["last_error"]["fixed_by"], Value::Null, "{status:#}");
    let table = on_terminal(&gw, &["status"]).stdout;
    assert!(
        table.contains("last error    the latest reload, "),
        "{table}"
    );
    assert!(table.contains(" ago (still failing)\n"), "{table}");

    // Fixed: applied, its diff in shares; the last error stays, aged and marked fixed.
    gw.config().write("routes.yaml", &shop.routes(80, 20));
    let out = gw.config().cli(&["reload"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        report["diff"],
        serde_json::json!(["shop: split shop-stable 95% -> 80%, shop-canary 5% -> 20%"]),
        "{out}"
    );
    let status = piped_json(&gw, &["status"]);
    let e = &status["last_error"];
    assert_eq!(
        (
            &e["attempts_since"],
            &e["fixed_by"]["version"],
            &e["fixed_by"]["trigger"]
        ),
        (&Value::from(1), &Value::from(2), &Value::from("api")),
        "{status:#}"
    );
    assert!(e["age_s"].as_u64().is_some(), "{status:#}");
    let table = on_terminal(&gw, &["status"]).stdout;
    assert!(table.contains("last error    1 reload ago, "), "{table}");
    assert!(
        table.contains(" ago (fixed since: version 2 applied by api at "),
        "{table}"
    );
    assert!(table.contains(&located), "{table}");

    // The answer on a terminal: the diff as a person reads it.
    gw.config().write("routes.yaml", &shop.routes(50, 50));
    let out = on_terminal(&gw, &["reload"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .starts_with("applied: version 3 (was version 2), swapped in "),
        "{out}"
    );
    assert!(out.stdout.contains("\ndiff: routes +0 -0 ~1, upstreams +0 -0 ~0\n  shop: split shop-stable 80% -> 50%, shop-canary 20% -> 50%\n"), "{out}");
}

#[test]
fn a_rollback_the_routes_file_does_not_hold_warns_that_the_next_reload_applies_the_file() {
    let (shop, gw) = Shop::unwatched_at_95_5();
    gw.config().write("routes.yaml", &shop.routes(80, 20));
    assert_eq!(gw.config().cli(&["reload"]).code, Some(0));

    let out = gw.config().cli(&["rollback", "--to", "1"]);
    assert_eq!(out.code, Some(0), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).expect("report JSON");
    assert_eq!(
        (&report["source"], &report["matches_file"]),
        (&Value::from("file"), &Value::from(false)),
        "{out}"
    );
    assert_eq!(
        out.stderr,
        "warning: the routes file is not version 3: the next reload (a save of the file, SIGHUP, \
         `dyegate reload` or POST /reload) applies the file again; keep this version with \
         `dyegate rollback --write-file`, or edit the file\n"
    );
    // Back to what the file holds: no warning.
    let out = gw.config().cli(&["rollback", "--to", "2"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out}");
    // Refused: exit 1, the API's words.
    let out = gw.config().cli(&["rollback", "--to", "99", "-o", "table"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (
            Some(1),
            "",
            "dyegate: rollback refused: version 99 is not kept (kept: 1, 2, 3, 4)\n"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn rollback_write_file_keeps_the_version_in_the_routes_file() {
    let shop = Shop::new();
    let (v1, v2) = (shop.routes(95, 5), shop.routes(80, 20));
    // The file is watched (the default): the watcher sees the written file and finds no change.
    let gw = GatewayConfig::new(&v1).start();
    let routes = gw.config().routes_file();
    std::fs::set_permissions(&routes, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    gw.config().write("routes.yaml", &v2);
    gw.wait_for_status(SETTLE, "version 2", |s| {
        s["version"] == 2 && s["matches_file"] == true
    })
    .await;
    let watched_no_ops = |gw: &Dyegate| {
        (gw.config().audit_records().iter())
            .filter(|r| r["trigger"] == "file" && r["result"] == "no_op")
            .count()
    };
    let before = watched_no_ops(&gw);

    let out = gw
        .config()
        .cli(&["rollback", "--to", "1", "--write-file", "-o", "table"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .starts_with("rolled back: version 3 now serves version 1's table (was version 2)"),
        "{out}"
    );
    let canonical = std::fs::canonicalize(&routes).expect("canonical path");
    assert!(
        out.stdout.ends_with(&format!(
            "wrote version 3 to {}: the file holds what serves (its reload is a no-op)\n",
            canonical.display()
        )),
        "{out}"
    );
    assert_eq!(out.stderr, "", "no warning: the file holds the version");
    assert_eq!(std::fs::read_to_string(&routes).expect("routes.yaml"), v1);
    let mode = std::fs::metadata(&routes)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    let status = gw.status().await;
    assert_eq!(
        (&status["version"], &status["matches_file"]),
        (&Value::from(3), &Value::from(true)),
        "{status:#}"
    );

    // The watcher's look at the new file, then an explicit reload: both no-ops.
    assert!(
        wait_until(SETTLE, || watched_no_ops(&gw) > before),
        "the watcher did not look at the written file\n{}",
        gw.logs()
    );
    let report = piped_json(&gw, &["reload"]);
    assert_eq!(
        (&report["result"], &report["version_after"]),
        (&Value::from("no_op"), &Value::from(3)),
        "{report:#}"
    );
    assert_eq!(gw.version().await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_write_file_is_refused_on_an_etcd_fed_gateway() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    fleet.push(&config, "blue");
    let gw = config.start();
    let r2 = fleet.push(gw.config(), "green");
    gw.wait_for_status(SETTLE, "the second revision", |s| s["version"] == r2)
        .await;

    let out = gw.config().cli(&["rollback", "--write-file"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        out.stderr,
        "dyegate: rollback --write-file: this gateway's table comes from etcd (under /dyegate/test/), \
         not from a routes file; roll the fleet back with `dyegate rollback --fleet --to REVISION`, \
         or this gateway alone without --write-file\n"
    );
    assert_eq!(gw.version().await, r2, "nothing was rolled back");
    // --fleet and --write-file together: a usage error.
    let out = gw
        .config()
        .cli(&["rollback", "--fleet", "--write-file", "--to", "1"]);
    assert_eq!(out.code, Some(2), "{out}");
}
