//! The admin API and the CLI around it: the bearer token, the refusal to expose the API without
//! one, every endpoint's answer, `dyegate status|reload|versions` and `dyegate diff`.

use std::time::Duration;

use dyegate_suite::gateway::GATEWAY_FILE;
use dyegate_suite::{dyegate_cli, free_port, upstream_groups, GatewayConfig, Req, Upstream};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const SETTLE: Duration = Duration::from_secs(5);

fn routes_to(up: &Upstream) -> String {
    format!(
        "{}routes:\n  - name: all\n    split: [{{ upstream: {}, weight: 1 }}]\n",
        upstream_groups(&[(up.name(), up)]),
        up.name()
    )
}

/// `METHOD path` on `addr` with an optional `Authorization` value; status and JSON body.
async fn call(
    addr: std::net::SocketAddr,
    method: Method,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Req::new(method, path);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let resp = req.send(addr).await;
    let body = serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", resp.text()));
    (resp.status, body)
}

#[tokio::test]
async fn with_a_token_configured_the_api_answers_401_without_it() {
    let up = Upstream::start("blue");
    let gw = GatewayConfig::new(&routes_to(&up))
        .with_admin_token("s3cret-token")
        .start();
    let admin = gw.admin_addr();
    let denied = json!({ "error": "missing or wrong bearer token" });

    for (method, path) in [
        (Method::GET, "/status"),
        (Method::GET, "/versions"),
        (Method::GET, "/versions/1"),
        (Method::GET, "/routes"),
        (Method::POST, "/reload"),
        (Method::POST, "/rollback"),
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("s3cret-token"),
            Some("Basic s3cret-token"),
        ] {
            let (code, body) = call(admin, method.clone(), path, auth).await;
            assert_eq!(
                (code, &body),
                (StatusCode::UNAUTHORIZED, &denied),
                "{method} {path} with {auth:?}"
            );
        }
    }
    // Nothing was attempted: the audit log has the startup line only.
    assert_eq!(gw.config().audit_records().len(), 1);

    let (code, status) = call(admin, Method::GET, "/status", Some("Bearer s3cret-token")).await;
    assert_eq!(code, StatusCode::OK, "{status:#}");
    assert_eq!(status["version"], 1);

    // Probes stay open for orchestrators.
    let (code, _) = call(admin, Method::GET, "/healthz", None).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = call(admin, Method::GET, "/readyz", None).await;
    assert_eq!(code, StatusCode::OK);

    // The CLI reads the token from gateway.yaml.
    let out = gw.config().cli(&["status"]);
    assert_eq!(out.code, Some(0), "{out}");
    let status: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    assert_eq!(status["version"], 1, "{out}");
}

#[test]
fn run_refuses_a_non_loopback_admin_address_without_a_token() {
    let up = Upstream::start("blue");
    let cfg = GatewayConfig::new(&routes_to(&up));
    let port = free_port();
    let loopback = format!("admin: {{ listen: \"{}\" }}", cfg.admin_addr());
    let exposed = format!("admin: {{ listen: \"0.0.0.0:{port}\" }}");
    let text = cfg.gateway_text().replacen(&loopback, &exposed, 1);
    cfg.write(GATEWAY_FILE, &text);

    let out = cfg.run_to_exit();
    assert!(!out.timed_out, "dyegate kept running\n{out}");
    assert_eq!(out.code, Some(1), "{out}");
    let gateway = cfg.gateway_file();
    let line = text
        .lines()
        .position(|l| l.starts_with("admin:"))
        .expect("admin line")
        + 1;
    let col = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.find("\"0.0.0.0"))
        .expect("address")
        + 1;
    assert_eq!(
        out.stderr.lines().collect::<Vec<_>>(),
        [
            format!(
                "{}:{line}:{col}: admin.listen: found non-loopback address 0.0.0.0:{port} without admin.token, expected a loopback address or a bearer token in admin.token",
                gateway.display()
            ),
            format!("dyegate: not started: invalid {}", gateway.display()),
        ],
        "{out}"
    );
    // `check` says the same.
    let check = cfg.check();
    assert_eq!(check.code, Some(1), "{check}");
    assert!(
        check
            .stdout
            .contains("admin.listen: found non-loopback address"),
        "{check}"
    );
}

#[tokio::test]
async fn a_non_loopback_admin_address_with_a_token_starts() {
    let up = Upstream::start("blue");
    let cfg = GatewayConfig::new(&routes_to(&up));
    let port = free_port();
    let text = cfg.gateway_text().replacen(
        &format!("admin: {{ listen: \"{}\" }}", cfg.admin_addr()),
        &format!("admin: {{ listen: \"0.0.0.0:{port}\", token: \"t0ken\" }}"),
        1,
    );
    cfg.write(GATEWAY_FILE, &text);
    let gw = cfg.start();
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ok = dyegate_suite::wait_until_async(SETTLE, || async {
        tokio::net::TcpStream::connect(admin).await.is_ok()
    })
    .await;
    assert!(ok, "admin API not listening on {admin}\n{}", gw.logs());
    let (code, _) = call(admin, Method::GET, "/status", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = call(admin, Method::GET, "/status", Some("Bearer t0ken")).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn every_endpoint_answers_json() {
    let up = Upstream::start("blue");
    let routes = routes_to(&up);
    let gw = GatewayConfig::new(&routes).start();

    let status = gw.status().await;
    for key in [
        "version",
        "sha256",
        "loaded_at",
        "trigger",
        "routes_file",
        "matches_file",
        "last_error",
    ] {
        assert!(
            status.get(key).is_some(),
            "/status has no {key}: {status:#}"
        );
    }
    assert_eq!(
        status["routes_file"],
        gw.config().routes_file().display().to_string()
    );
    assert_eq!(status["last_error"], Value::Null);

    let v1 = gw.admin_get("/versions/1").await;
    assert_eq!(v1["source"], routes);
    assert_eq!(v1["trigger"], "startup");
    assert_eq!(v1["sha256"], status["sha256"]);

    let table = gw.admin_get("/routes").await;
    assert_eq!(table["version"], 1);
    assert_eq!(table["routes"][0]["name"], "all");
    assert_eq!(
        table["routes"][0]["split"],
        json!([{ "upstream": "blue", "weight": 1 }])
    );
    assert_eq!(
        table["upstreams"]["blue"]["targets"][0]["addr"],
        up.target()
    );

    let (code, ready) = gw.admin(Method::GET, "/readyz", None).await;
    assert_eq!(code, StatusCode::OK, "{ready:#}");
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["version"], 1);

    let cases: [(Method, &str, Option<&str>, StatusCode, Value); 5] = [
        (
            Method::GET,
            "/versions/x",
            None,
            StatusCode::BAD_REQUEST,
            json!({ "error": "expected /versions/N with N a version number (or N.K, a local change)" }),
        ),
        (
            Method::GET,
            "/versions/7",
            None,
            StatusCode::NOT_FOUND,
            json!({ "error": "version 7 is not kept" }),
        ),
        (
            Method::GET,
            "/reload",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": "method not allowed" }),
        ),
        (
            Method::POST,
            "/rollback",
            Some(r#"{"to": "two"}"#),
            StatusCode::BAD_REQUEST,
            json!({ "error": "found \"to\": \"two\", expected a version number (or \"N.K\" for a local change)" }),
        ),
        (
            Method::POST,
            "/rollback",
            None,
            StatusCode::NOT_FOUND,
            json!({ "error": "no earlier version to roll back to" }),
        ),
    ];
    for (method, path, body, code, expected) in cases {
        let (got, json) = gw.admin(method.clone(), path, body).await;
        assert_eq!((got, &json), (code, &expected), "{method} {path} {body:?}");
    }
    let (code, json) = gw.admin(Method::GET, "/nope", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{json:#}");
    assert_eq!(json["error"], "not found");
}

#[tokio::test]
async fn cli_reload_versions_and_status_use_the_admin_api() {
    let (blue, green) = (Upstream::start("blue"), Upstream::start("green"));
    let gw = GatewayConfig::new(&routes_to(&blue))
        .with_gateway_extra("reload: { watch: false }\n")
        .start();

    gw.config().write("routes.yaml", &routes_to(&green));
    let out = gw.config().cli(&["reload"]);
    assert_eq!(out.code, Some(0), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).expect("report JSON");
    assert_eq!(
        (
            &report["trigger"],
            &report["result"],
            &report["version_after"]
        ),
        (&json!("api"), &json!("applied"), &json!(2)),
        "{out}"
    );
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.upstream(), Some("green"));

    // A rejected reload: exit 1, the report on stdout, its located errors on stderr.
    gw.config().write("routes.yaml", "routes: [");
    let out = gw.config().cli(&["reload"]);
    assert_eq!(out.code, Some(1), "{out}");
    let report: Value = serde_json::from_str(&out.stdout).expect("report JSON");
    assert_eq!(report["result"], "failed", "{out}");
    let routes = gw.config().routes_file().display().to_string();
    assert!(
        out.stderr.starts_with(&format!(
            "dyegate: reload rejected, version 2 keeps serving; 1 error:\n{routes}:"
        )),
        "{out}"
    );

    let out = gw.config().cli(&["versions"]);
    assert_eq!(out.code, Some(0), "{out}");
    let list: Value = serde_json::from_str(&out.stdout).expect("versions JSON");
    assert_eq!(list["active"], 2, "{out}");
    assert_eq!(list["versions"].as_array().map(Vec::len), Some(2), "{out}");

    // --admin overrides gateway.yaml's address.
    let out = dyegate_cli([
        "status".to_owned(),
        "-c".to_owned(),
        gw.config().gateway_file().display().to_string(),
        "--admin".to_owned(),
        gw.admin_addr().to_string(),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    let status: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    assert_eq!(status["version"], 2);
    assert_eq!(status["matches_file"], false);

    // Nobody there: a clear message.
    let nobody = format!("127.0.0.1:{}", free_port());
    let out = dyegate_cli([
        "status".to_owned(),
        "-c".to_owned(),
        gw.config().gateway_file().display().to_string(),
        "--admin".to_owned(),
        nobody.clone(),
    ]);
    out.assert_cannot_connect(&nobody);
}

#[test]
fn diff_prints_what_a_save_would_change() {
    let cfg = GatewayConfig::new("routes: []\n");
    let old = cfg.write(
        "old.yaml",
        r#"upstreams:
  shop-stable: { targets: ["127.0.0.1:9001"] }
  shop-canary: { targets: ["127.0.0.1:9002"] }
routes:
  - name: shop
    match: { host: shop.example.com }
    dye: { tags: { canary: shop-canary } }
    split:
      - { upstream: shop-stable, weight: 95 }
      - { upstream: shop-canary, weight: 5 }
  - name: api
    match: { path_prefix: /api }
    split: [{ upstream: shop-stable, weight: 1 }]
"#,
    );
    let new = cfg.write(
        "new.yaml",
        r#"upstreams:
  shop-stable: { targets: ["127.0.0.1:9001", "127.0.0.1:9003"] }
  shop-canary: { targets: ["127.0.0.1:9002"] }
  search: { targets: ["127.0.0.1:9004"] }
routes:
  - name: shop
    match: { host: shop.example.com, path_prefix: /shop }
    dye: { tags: { canary: shop-canary, beta: shop-canary } }
    split:
      - { upstream: shop-stable, weight: 80 }
      - { upstream: shop-canary, weight: 20 }
  - name: search
    match: { path_prefix: /search }
    split: [{ upstream: search, weight: 1 }]
"#,
    );
    let out = dyegate_cli(["diff".as_ref(), old.as_os_str(), new.as_os_str()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "shop: split shop-stable 95% -> 80%, shop-canary 5% -> 20%",
            "shop: tag added beta -> shop-canary",
            "shop: match.path_prefix (none) -> /shop",
            "route added: search",
            "route removed: api",
            "upstream shop-stable: target added 127.0.0.1:9003",
            "upstream added: search [127.0.0.1:9004]",
            "routes +1 -1 ~1, upstreams +1 -0 ~1",
        ],
        "{out}"
    );

    let same = dyegate_cli(["diff".as_ref(), old.as_os_str(), old.as_os_str()]);
    assert_eq!(
        (same.code, same.stdout.as_str()),
        (Some(0), "no changes\n"),
        "{same}"
    );

    // An invalid side: its errors, located, and exit 2.
    let bad = cfg.write(
        "bad.yaml",
        "routes:\n  - name: x\n    split: [{ upstream: nope, weight: 1 }]\n",
    );
    let out = dyegate_cli(["diff".as_ref(), old.as_os_str(), bad.as_os_str()]);
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(
        out.stdout,
        format!(
            "{}:3:25: routes[0].split[0].upstream: found unknown upstream \"nope\", expected an upstream defined under `upstreams` (none is defined)\n",
            bad.display()
        ),
        "{out}"
    );
}
