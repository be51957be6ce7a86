//! Named admin identities (issue 17): `admin.tokens` with roles, `admin.token` as one write
//! identity, refusals counted, every audit line naming the identity and the client, tokens in no
//! log, status or error. Real gateway, real upstream.

use std::time::Duration;

use dyegate_suite::{upstream_groups, wait_until, GatewayConfig, Req, Upstream};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const ALICE: &str = "alice-7f3e9c2a-token";
const PROM: &str = "prom-51b0d4e8-token";
const LEGACY: &str = "legacy-c0ffee-token";

fn routes_to(up: &Upstream) -> String {
    format!(
        "{}routes:\n  - name: all\n    split: [{{ upstream: {}, weight: 1 }}]\n",
        upstream_groups(&[(up.name(), up)]),
        up.name()
    )
}

async fn call(
    gw: &dyegate_suite::Dyegate,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Req::new(method, path);
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    let resp = req.send(gw.admin_addr()).await;
    (resp.status, resp.text())
}

fn with_identities(cfg: GatewayConfig) -> GatewayConfig {
    cfg.write("alice.token", &format!("{ALICE}\n"));
    cfg.write("prom.token", PROM);
    let admin = cfg.admin_addr();
    let text = cfg.gateway_text().replacen(
        &format!("admin: {{ listen: \"{admin}\" }}"),
        &format!(
            "admin:\n  listen: \"{admin}\"\n  token: \"{LEGACY}\"\n  tokens:\n    - {{ name: alice, token_file: alice.token, role: write }}\n    - {{ name: prom, token_file: prom.token, role: read }}"
        ),
        1,
    );
    cfg.write("gateway.yaml", &text);
    cfg
}

fn denied(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("dyegate_admin_denied_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
}

#[tokio::test]
async fn read_and_write_identities_are_enforced_named_and_counted() {
    let up = Upstream::start("blue");
    let gw = with_identities(GatewayConfig::new(&routes_to(&up))).start();

    // read: every GET, no POST.
    for path in ["/status", "/versions", "/routes", "/upstreams", "/metrics"] {
        let (code, body) = call(&gw, Method::GET, path, Some(PROM)).await;
        assert_eq!(code, StatusCode::OK, "GET {path} as prom: {body}");
    }
    for path in ["/reload", "/rollback"] {
        let (code, body) = call(&gw, Method::POST, path, Some(PROM)).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "POST {path} as prom: {body}");
        let body: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(
            body,
            json!({ "error": "this identity has role read; this call needs role write" })
        );
    }
    // Missing or wrong: 401, one message.
    for token in [None, Some("nope"), Some(&ALICE[1..])] {
        let (code, body) = call(&gw, Method::GET, "/status", token).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("JSON"),
            json!({ "error": "missing or wrong bearer token" })
        );
    }
    let (code, _) = call(&gw, Method::GET, "/metrics", Some("nope")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    // write: alice and the legacy admin.token, each named in its audit line with its client.
    let (code, body) = call(&gw, Method::POST, "/reload", Some(ALICE)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = call(&gw, Method::POST, "/reload", Some(LEGACY)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let audit = gw.config().audit_records();
    let names: Vec<&Value> = audit.iter().map(|r| &r["identity"]).collect();
    assert_eq!(
        names,
        vec![&Value::Null, &json!("alice"), &json!("admin.token")],
        "{audit:#?}"
    );
    for r in &audit[1..] {
        let client = r["client"].as_str().expect("client address");
        assert!(client.starts_with("127.0.0.1:"), "{r}");
    }

    let (_, metrics) = call(&gw, Method::GET, "/metrics", Some(PROM)).await;
    assert_eq!(denied(&metrics, "read_only"), 2);
    assert_eq!(denied(&metrics, "missing_token"), 1);
    assert_eq!(denied(&metrics, "wrong_token"), 3);

    // No token anywhere it could leak: the log, /status, the audit log.
    let (_, status) = call(&gw, Method::GET, "/status", Some(ALICE)).await;
    let audit_text = std::fs::read_to_string(gw.config().audit_log()).expect("audit log");
    // A call's log line is written after its answer: wait for both reloads' lines, then read.
    let both_logged = || gw.logs().matches("admin: POST /reload by ").count() >= 2;
    assert!(
        wait_until(Duration::from_secs(10), both_logged),
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    for secret in [ALICE, PROM, LEGACY] {
        for (what, text) in [("log", &logs), ("status", &status), ("audit", &audit_text)] {
            assert!(!text.contains(secret), "token in the {what}:\n{text}");
        }
    }
    assert!(
        logs.contains("admin: POST /reload by alice from 127.0.0.1:"),
        "{logs}"
    );
    assert!(logs.contains("refused: read_only"), "{logs}");
}

#[test]
fn identity_config_errors_are_located_and_never_show_a_token() {
    let cfg = GatewayConfig::new("routes: []\n");
    cfg.write("alice.token", ALICE);
    cfg.write("empty.token", "  \n");
    cfg.write("twin.token", ALICE);
    let admin = cfg.admin_addr();
    let text = cfg.gateway_text().replacen(
        &format!("admin: {{ listen: \"{admin}\" }}"),
        &format!(
            "admin:\n  listen: \"{admin}\"\n  tokens:\n    - {{ name: alice, token_file: alice.token, role: write }}\n    - {{ name: ops, token_file: missing.token, role: read }}\n    - {{ name: \"bad name\", token_file: alice.token, role: read }}\n    - {{ name: alice, token_file: empty.token, role: read }}\n    - {{ name: e, token_file: empty.token, role: read }}\n    - {{ name: twin, token_file: twin.token, role: read }}"
        ),
        1,
    );
    cfg.write("gateway.yaml", &text);
    let out = cfg.check();
    assert_eq!(out.code, Some(1), "{out}");
    let f = cfg.gateway_file().display().to_string();
    let d = cfg.dir().display().to_string();
    let expected = [
        format!("{f}:6:32: admin.tokens[1].token_file: found {d}/missing.token unreadable (No such file or directory (os error 2)), expected a file holding the bearer token"),
        format!("{f}:7:15: admin.tokens[2].name: found \"bad name\", expected 1-64 characters of A-Z a-z 0-9 - _ ."),
        format!("{f}:8:15: admin.tokens[3].name: found \"alice\" twice, expected each name once"),
        format!("{f}:9:30: admin.tokens[4].token_file: found an empty file {d}/empty.token, expected a bearer token"),
        format!("{f}:10:33: admin.tokens[5].token_file: found the same token as identity \"alice\", expected a token of its own"),
    ];
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(got, expected, "{out}");
    assert!(!out.stdout.contains(ALICE) && !out.stderr.contains(ALICE));

    let text = cfg.gateway_text().replace("role: write", "role: admin");
    cfg.write("gateway.yaml", &text);
    let out = cfg.check();
    assert_eq!(
        out.stdout.trim(),
        format!("{f}:5:53: admin.tokens[0].role: found \"admin\", expected one of `read`, `write`")
    );
}
