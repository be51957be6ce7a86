//! TLS to upstreams end to end (`upstreams.NAME.tls`, `protocol: h2`): a real HTTPS upstream
//! with a certificate from a test CA. Verified against that CA the request passes; against
//! another CA the handshake is refused, the client gets 502 and the log says why; `verify:
//! false` accepts any certificate; `protocol: h2` reaches the upstream as HTTP/2 by ALPN; a
//! target without `sni` is verified by its IP address; a CA file that is missing fails the
//! reload with a located error and the running table keeps serving.

use std::time::Duration;

use dyegate_suite::certs::TestCa;
use dyegate_suite::{wait_until, Dyegate, GatewayConfig, Req, Resp, Upstream};
use http::StatusCode;

const SETTLE: Duration = Duration::from_secs(10);

/// routes.yaml with one group `orders` (`group` = the fields after `targets`) and one route.
fn routes(target: &str, group: &str) -> String {
    format!(
        "upstreams:\n  orders: {{ targets: [\"{target}\"], {group} }}\nroutes:\n  - name: orders\n    split: [{{ upstream: orders, weight: 1 }}]\n"
    )
}

/// A gateway whose dir holds `ca.pem` (the CA that signed the upstream's certificate) and
/// `other-ca.pem` (one that did not).
fn config(routes_yaml: &str, ca: &TestCa, other: &TestCa) -> GatewayConfig {
    let config = GatewayConfig::new(routes_yaml);
    config.write("ca.pem", &ca.pem());
    config.write("other-ca.pem", &other.pem());
    config
}

/// GET `path` through `gw`, which must answer 200 (its log shown otherwise).
async fn get_ok(gw: &Dyegate, path: &str) -> Resp {
    let resp = Req::get(path).send(gw.addr()).await;
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "{}\n{}",
        resp.text(),
        gw.logs()
    );
    resp
}

#[tokio::test]
async fn verified_against_the_routes_ca_passes_and_a_wrong_ca_is_502_with_a_log_line() {
    let (ca, other) = (TestCa::new("orders CA"), TestCa::new("someone else's CA"));
    let up = Upstream::start_tls("orders", &ca.leaf(&["orders.internal"]));
    let gw = config(
        &routes(&up.target(), "tls: { sni: orders.internal, ca: ca.pem }"),
        &ca,
        &other,
    )
    .start();

    let resp = get_ok(&gw, "/hello").await;
    assert_eq!(resp.upstream(), Some("orders"));
    assert_eq!(
        resp.json()["version"],
        "HTTP/1.1",
        "h1 over TLS: {}",
        resp.text()
    );
    assert_eq!(up.request_count(), 1);

    // The same upstream, trusted through another CA: refused in the handshake.
    gw.config().write(
        "routes.yaml",
        &routes(
            &up.target(),
            "tls: { sni: orders.internal, ca: other-ca.pem }",
        ),
    );
    gw.wait_for_status(SETTLE, "the reload to other-ca.pem", |s| s["version"] == 2)
        .await;
    let resp = Req::get("/hello").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY, "{}", resp.text());
    assert_eq!(up.request_count(), 1, "no request over a refused handshake");
    // The upstream's thread records the failed handshake after the gateway already answered.
    assert!(
        wait_until(SETTLE, || up.handshake_failures() >= 1),
        "the handshake reached the upstream"
    );
    let target = up.target();
    let logged = wait_until(SETTLE, || {
        gw.logs().lines().any(|l| {
            l.contains(&format!("request to upstream {target} failed"))
                && l.contains("TLS")
                && l.contains("UnknownIssuer")
        })
    });
    assert!(
        logged,
        "expected a log line naming the target and the certificate error:\n{}",
        gw.logs()
    );
}

#[tokio::test]
async fn verify_false_accepts_a_certificate_no_configured_ca_signed() {
    let (ca, other) = (TestCa::new("orders CA"), TestCa::new("unused"));
    let up = Upstream::start_tls("orders", &ca.leaf(&["somewhere.else"]));
    let gw = config(
        &routes(&up.target(), "tls: { sni: orders.internal, verify: false }"),
        &ca,
        &other,
    )
    .start();
    let resp = get_ok(&gw, "/").await;
    assert_eq!(resp.upstream(), Some("orders"));
}

#[tokio::test]
async fn protocol_h2_reaches_the_upstream_as_http2_by_alpn() {
    let (ca, other) = (TestCa::new("orders CA"), TestCa::new("unused"));
    let up = Upstream::start_tls("orders", &ca.leaf(&["orders.internal"]));
    let gw = config(
        &routes(
            &up.target(),
            "protocol: h2, tls: { sni: orders.internal, ca: ca.pem }",
        ),
        &ca,
        &other,
    )
    .start();
    for _ in 0..3 {
        let resp = get_ok(&gw, "/h2").await;
        assert_eq!(resp.json()["version"], "HTTP/2.0", "{}", resp.text());
    }
    assert_eq!(
        up.connections(),
        1,
        "the three requests share one HTTP/2 connection"
    );
}

#[tokio::test]
async fn without_sni_the_target_is_verified_by_its_ip_address() {
    let (ca, other) = (TestCa::new("orders CA"), TestCa::new("unused"));
    // A certificate for the address only, and one for a name only.
    let by_ip = Upstream::start_tls("by-ip", &ca.leaf(&["127.0.0.1"]));
    let by_name = Upstream::start_tls("by-name", &ca.leaf(&["orders.internal"]));
    let gw = config(&routes(&by_ip.target(), "tls: { ca: ca.pem }"), &ca, &other).start();
    let resp = get_ok(&gw, "/").await;
    assert_eq!(resp.upstream(), Some("by-ip"));

    gw.config().write(
        "routes.yaml",
        &routes(&by_name.target(), "tls: { ca: ca.pem }"),
    );
    gw.wait_for_status(SETTLE, "the reload to by-name", |s| s["version"] == 2)
        .await;
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(
        resp.status,
        StatusCode::BAD_GATEWAY,
        "a certificate without the address must be refused: {}",
        resp.text()
    );
    assert_eq!(by_name.request_count(), 0);
}

#[tokio::test]
async fn a_missing_ca_file_fails_the_reload_with_a_located_error_and_the_old_table_serves() {
    let (ca, other) = (TestCa::new("orders CA"), TestCa::new("unused"));
    let up = Upstream::start_tls("orders", &ca.leaf(&["orders.internal"]));
    let gw = config(
        &routes(&up.target(), "tls: { sni: orders.internal, ca: ca.pem }"),
        &ca,
        &other,
    )
    .start();
    assert_eq!(Req::get("/").send(gw.addr()).await.status, StatusCode::OK);

    gw.config().write(
        "routes.yaml",
        &routes(&up.target(), "tls: { sni: orders.internal, ca: gone.pem }"),
    );
    let status = gw
        .wait_for_status(SETTLE, "the failed reload", |s| s["reloads"]["failed"] == 1)
        .await;
    let file = gw.config().routes_file().display().to_string();
    let dir = gw.config().dir().display().to_string();
    assert_eq!(
        status["last_error"]["errors"],
        serde_json::json!([format!(
            "{file}:2:76: upstreams.orders.tls.ca: found \"gone.pem\", which cannot be read ({dir}/gone.pem: No such file or directory (os error 2)), expected a PEM file of CA certificates"
        )]),
        "{status:#}"
    );
    assert_eq!(status["version"], 1, "{status:#}");
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::OK, "the old table keeps serving");

    // A file that is there but holds no certificate.
    gw.config().write("gone.pem", "not a certificate\n");
    gw.config().write(
        "routes.yaml",
        &routes(
            &up.target(),
            "tls: { sni: orders.internal, ca: \"gone.pem\" }",
        ),
    );
    let status = gw
        .wait_for_status(SETTLE, "the second failed reload", |s| {
            s["reloads"]["failed"] == 2
        })
        .await;
    assert_eq!(
        status["last_error"]["errors"],
        serde_json::json!([format!(
            "{file}:2:76: upstreams.orders.tls.ca: found \"gone.pem\" with no certificate in it, expected a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)"
        )]),
        "{status:#}"
    );
    assert_eq!(Req::get("/").send(gw.addr()).await.status, StatusCode::OK);
}
