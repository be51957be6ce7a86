//! gateway.yaml on SIGHUP and `POST /reload` (issue 26): the keys that can change live are
//! applied at once (`server_header`, `limits.max_request_header_bytes`, ...), the others are
//! named as waiting for `dyegate upgrade`, and a file with errors changes nothing, located.
//! Before, every edit of gateway.yaml was ignored ("no change").

use std::time::Duration;

use dyegate_suite::{GatewayConfig, Req, Upstream};
use http::StatusCode;

const SETTLE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_keys_apply_on_sighup_and_the_others_are_named() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&format!(
        "upstreams:\n  s: {{ targets: [\"{}\"] }}\nroutes:\n  - name: r\n    match: {{ path_prefix: /in }}\n    split: [{{ upstream: s, weight: 1 }}]\n",
        up.target()
    ))
    .start();
    let server = || async {
        Req::get("/out")
            .send(gw.addr())
            .await
            .header("server")
            .map(str::to_string)
    };
    assert_eq!(server().await.as_deref(), Some("dyegate"));
    let big_header = "x".repeat(6000);
    let big = || Req::get("/in").header("x-big", &big_header).send(gw.addr());
    assert_eq!(big().await.status, StatusCode::OK);

    let original = gw.config().gateway_text();
    let edited = format!(
        "{original}server_header: edge-2\nlimits: {{ max_request_header_bytes: 4096 }}\nconnect_timeout_ms: 1234\n"
    );
    gw.config().write("gateway.yaml", &edited);
    gw.signal(libc::SIGHUP);
    let applied = dyegate_suite::wait_until_async(SETTLE, || async {
        server().await.as_deref() == Some("edge-2")
    })
    .await;
    assert!(applied, "server_header not applied:\n{}", gw.logs());
    assert_eq!(
        big().await.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let file = gw.config().gateway_file().display().to_string();
    // The settings are swapped first, then the line is logged: wait for it.
    let applied_line =
        format!("gateway.yaml {file}: applied limits.max_request_header_bytes, server_header");
    let logged = dyegate_suite::wait_until(SETTLE, || gw.logs().contains(&applied_line));
    assert!(logged, "{}", gw.logs());
    // Logged after the applied line: waited for too.
    let waiting_line = format!("gateway.yaml {file}: connect_timeout_ms changed, not applied until `dyegate upgrade` (or a restart)");
    let logged = dyegate_suite::wait_until(SETTLE, || gw.logs().contains(&waiting_line));
    assert!(logged, "{}", gw.logs());

    // POST /reload says the same in its answer; what was applied is no longer a change.
    let (code, answer) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{answer:#}");
    assert_eq!(
        answer["gateway"],
        serde_json::json!({ "file": file, "applied_live": [], "needs_upgrade": ["connect_timeout_ms"], "errors": [] }),
        "{answer:#}"
    );

    // A file with an error: nothing applied, the error located, the answer a failure.
    gw.config()
        .write("gateway.yaml", &edited.replace("edge-2", "\"caf\u{e9}\""));
    let (code, answer) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer:#}");
    let error = answer["gateway"]["errors"][0].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("{file}:"))
            && error.contains("server_header: found \"caf\u{e9}\""),
        "{answer:#}"
    );
    assert_eq!(server().await.as_deref(), Some("edge-2"));
    assert_eq!(
        big().await.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}
