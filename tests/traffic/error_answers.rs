//! dyegate's own error answers (issue 26), end to end: a 502, 504, 404, 429 and 503 name the
//! status, what happened and the request's trace id (text, or JSON for a client that asks for
//! it), and carry `server_header` (default `dyegate`, none when empty), never `Server: Pingora`.

use dyegate_suite::{free_addr, GatewayConfig, Req, Upstream};
use http::StatusCode;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

fn routes(live: &Upstream) -> String {
    format!(
        "upstreams:\n  live: {{ targets: [\"{}\"] }}\n  dead: {{ targets: [\"{}\"] }}\n\
         routes:\n\
         \x20 - name: dead\n    match: {{ path_prefix: /dead }}\n    split: [{{ upstream: dead, weight: 1 }}]\n\
         \x20 - name: slow\n    match: {{ path_prefix: /slow }}\n    timeouts: {{ read_ms: 300 }}\n    split: [{{ upstream: live, weight: 1 }}]\n\
         \x20 - name: limited\n    match: {{ path_prefix: /limited }}\n    limits: {{ rate_per_s: 1, burst: 1, key: client_ip }}\n    split: [{{ upstream: live, weight: 1 }}]\n",
        live.target(),
        free_addr(),
    )
}

fn traced(path: &str) -> Req {
    Req::get(path).header("traceparent", &format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
}

/// The answer's body: its first line and the trace id it names.
fn said(resp: &dyegate_suite::Resp) -> (String, Option<String>) {
    let text = resp.text();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().to_string();
    let id = lines.find_map(|l| l.strip_prefix("trace id: ").map(str::to_string));
    (first, id)
}

#[tokio::test]
async fn errors_name_the_status_what_happened_and_the_trace_id() {
    let live = Upstream::start("live");
    let gw = GatewayConfig::new(&routes(&live)).start();

    let resp = traced("/dead").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        said(&resp),
        (
            "502 Bad Gateway: upstream group dead did not answer (connection refused)".into(),
            Some(TRACE_ID.into())
        )
    );
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("server"), Some("dyegate"));
    assert_eq!(resp.header("cache-control"), Some("private, no-store"));

    let resp = traced("/slow?ms=5000").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        said(&resp),
        (
            "504 Gateway Timeout: upstream group live did not answer in time (read timed out)"
                .into(),
            Some(TRACE_ID.into())
        )
    );
    assert_eq!(resp.header("server"), Some("dyegate"));

    let resp = traced("/nowhere").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(
        said(&resp),
        ("404 Not Found: no route".into(), Some(TRACE_ID.into()))
    );
    assert_eq!(resp.header("server"), Some("dyegate"));

    // Without a traceparent the gateway's own trace id is named (32 hex digits).
    let mut limited = None;
    for _ in 0..20 {
        let resp = Req::get("/limited").send(gw.addr()).await;
        if resp.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(resp);
            break;
        }
    }
    let resp = limited.expect("a 429 within 20 requests at 1 per second");
    let (first, id) = said(&resp);
    assert_eq!(
        first,
        "429 Too Many Requests: rate limit of route limited exceeded"
    );
    let id = id.unwrap_or_default();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id != TRACE_ID,
        "{id:?}"
    );
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(resp.header("server"), Some("dyegate"));
}

#[tokio::test]
async fn json_for_a_client_that_asks_for_it() {
    let live = Upstream::start("live");
    let gw = GatewayConfig::new(&routes(&live)).start();
    let resp = traced("/dead")
        .header("accept", "application/json")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.json(),
        serde_json::json!({
            "status": 502,
            "error": "Bad Gateway",
            "detail": "upstream group dead did not answer (connection refused)",
            "trace_id": TRACE_ID,
        })
    );
    let resp = traced("/nowhere")
        .header("accept", "text/html, application/json;q=0.9")
        .send(gw.addr())
        .await;
    assert_eq!(resp.json()["detail"], "no route");
}

#[tokio::test]
async fn server_header_names_the_gateway_or_nothing() {
    let live = Upstream::start("live");
    for (setting, expected) in [
        ("server_header: edge-7\n", Some("edge-7")),
        ("server_header: \"\"\n", None),
    ] {
        let gw = GatewayConfig::new(&routes(&live))
            .with_gateway_extra(setting)
            .start();
        for path in ["/dead", "/nowhere"] {
            let resp = Req::get(path).send(gw.addr()).await;
            assert!(resp.status.is_client_error() || resp.status.is_server_error());
            assert_eq!(resp.header("server"), expected, "{setting} {path}");
        }
        // A proxied answer keeps the upstream's own headers.
        let resp = Req::get("/slow?ms=0").send(gw.addr()).await;
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.upstream(), Some("live"));
    }
    let bad =
        GatewayConfig::new(&routes(&live)).with_gateway_extra("server_header: \"caf\u{e9}\"\n");
    let file = bad.gateway_file().display().to_string();
    let out = bad.check();
    assert_eq!(out.code, Some(1), "{out}");
    // Located: file:line:col, the field, what was found and what is allowed.
    let line = out
        .line_starting_with(&format!("{file}:"))
        .unwrap_or_default();
    assert!(
        line.ends_with(": server_header: found \"caf\u{e9}\", expected printable ASCII of at most 128 bytes (\"\" or null: no Server header)"),
        "{out}"
    );
}
