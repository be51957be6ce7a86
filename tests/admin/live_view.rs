//! The live view (`GET /ui/`, issue 34) in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`) driven by Selenium (pinned in the toolbox venv by
//! `tests/run.sh`) through `tests/admin/live_view.py`, against the real gateway with a rollout
//! in progress and steady traffic. The script prints what it saw as JSON; the assertions are
//! here. Screenshots of each view go to `target/live-view/` (not committed).
//!
//! The Explain view asks `POST /explain` (the proxy's decision code) for `GET /` with the tag
//! `canary`, and shows the route and tag it answers.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use dyegate_suite::gateway::workspace_root;
use dyegate_suite::rollout::{upstreams, wait_rollout};
use dyegate_suite::tools::toolbox_dir;
use dyegate_suite::traffic::Traffic;
use dyegate_suite::upstream::FaultyUpstream;
use dyegate_suite::{Dyegate, GatewayConfig, Req};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const XSS: &str = "<img src=x onerror=alert(1)>";
const READER: &str = "reader-4d2b9e-token";
const WRITER: &str = "writer-81c7aa-token";
/// Long steps: the rollout stays on its first step while the browser looks at it.
const SLOW: &str = "steps: [10, 50, 100], step_ms: 600000, gates: { window_ms: 5000, min_requests: 5, max_error_rate: 0.5, max_latency_ms: 2000 }";

fn routes(stable: &FaultyUpstream, canary: &FaultyUpstream) -> String {
    format!(
        "{}  - name: \"{XSS}\"\n    match: {{ path_prefix: /xss }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        dyegate_suite::rollout::routes(stable, canary, SLOW, "")
    )
}

fn browser_paths() -> (PathBuf, PathBuf) {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(|n| PathBuf::from("/usr/bin").join(n))
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!("{} is not installed: run ./tests/run.sh once (it installs Debian's chromium and chromium-driver)", names[0])
            })
    };
    (find(&["chromium"]), find(&["chromedriver"]))
}

/// Runs the script in `mode` against `gw`; its JSON answer.
async fn drive(gw: &Dyegate, mode: &str) -> Value {
    let python = toolbox_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run ./tests/run.sh once (it installs selenium into the toolbox venv)",
        python.display()
    );
    let (chromium, chromedriver) = browser_paths();
    let args = json!({
        "mode": mode,
        "admin": format!("http://{}", gw.admin_addr()),
        "chromium": chromium,
        "chromedriver": chromedriver,
        "shots": workspace_root().join("target/live-view"),
        "xss_route": XSS,
        "read_token": READER,
        "write_token": WRITER,
    });
    let script = workspace_root().join("tests/admin/live_view.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(args.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("running tests/admin/live_view.py")
    })
    .await
    .expect("the script's thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "live_view.py {mode}: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        gw.logs()
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

async fn rollout_running(gw: &Dyegate) {
    wait_rollout(gw, Duration::from_secs(30), "a judged rollout", |r| {
        r["state"] == "progressing" && r["last_evaluation"]["enough_traffic"] == true
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_shows_the_rollout_pauses_it_and_is_safe_across_sites() {
    let (stable, canary) = upstreams();
    let gw = Dyegate::start(&routes(&stable, &canary));
    let traffic = Traffic::start(gw.addr(), 2, Duration::from_millis(20), vec![]);
    rollout_running(&gw).await;

    let seen = drive(&gw, "open").await;
    traffic.stop().await;
    let api = gw.admin_get("/rollouts/shop").await;

    // The panel shows the step and the gates the API gives, read at the same judgement.
    let j = &seen["judgement"];
    assert_eq!(j["page"], j["api"], "{seen:#}");
    assert_eq!(j["page"]["step"], "1", "{seen:#}");
    let gates: Vec<&str> = (j["page"]["gates"].as_array().expect("gates").iter())
        .filter_map(|g| g["gate"].as_str())
        .collect();
    assert_eq!(gates, ["error_rate", "latency"], "{seen:#}");
    assert_eq!(seen["chart_limit_lines"], 2, "{seen:#}");

    // Abort asks first (cancelled: nothing happened); pause moved it, as the API says.
    assert_eq!(
        seen["abort_confirmation"],
        "Abort the rollout of shop? The canary goes back to 0%."
    );
    assert_eq!(seen["state_after_cancelled_abort"], "progressing");
    assert_eq!(seen["state_after_pause"], "paused", "{seen:#}");
    assert!(
        gw.logs()
            .contains("admin: POST /rollouts/shop/pause by anonymous"),
        "{}",
        gw.logs()
    );

    // A route named like markup is text; no alert, no image element.
    assert_eq!(seen["xss_shown_as_text"], true, "{seen:#}");
    assert_eq!(seen["xss_alert"], false);
    assert_eq!(seen["img_elements"], 0);
    assert!(
        seen["shop_split"]
            .as_str()
            .unwrap_or_default()
            .contains('%'),
        "{seen:#}"
    );

    // Usable at phone width: nothing wider than the screen.
    assert!(
        seen["phone_scroll_width"].as_u64().unwrap_or(9999) <= 390,
        "{seen:#}"
    );

    // Versions with a diff.
    assert!(seen["versions"].as_u64().unwrap_or(0) >= 1, "{seen:#}");

    // Nothing left for another origin; the console has no error.
    assert!(seen["requests"].as_u64().unwrap_or(0) > 10, "{seen:#}");
    assert_eq!(seen["foreign_requests"], json!([]), "{seen:#}");
    assert_eq!(seen["console_errors"], json!([]), "{seen:#}");

    // Another site's page could not abort it through the browser, nor a script with the
    // page's header and another Origin.
    let x = &seen["cross_site"];
    assert_eq!(x["state_after_other_site"], "paused", "{seen:#}");
    assert_eq!(x["foreign_origin_status"][0], 403, "{seen:#}");
    assert_eq!(
        x["foreign_origin_status"][1]["error"],
        "cross-site request refused: Origin is not this admin API's own"
    );
    assert_eq!(x["state_after_foreign_origin"], "paused");
    assert_eq!(api["state"], "paused");
    assert!(
        gw.logs().contains("refused: foreign_origin"),
        "{}",
        gw.logs()
    );

    // The CLI sends no Origin and still works.
    let out = gw.config().cli(&["rollout", "resume", "shop"]);
    assert_eq!(out.code, Some(0), "{out}");

    // Explain: the page shows what POST /explain answers for `GET /` tagged `canary`.
    let fields = &seen["explain_fields"];
    let answer = &seen["explain_answer"];
    assert_eq!(fields["route"], "shop", "{answer}");
    assert_eq!(fields["tag"], "canary", "{answer}");
    assert_eq!(fields["group"], "canary", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_tokens_the_page_asks_for_one_and_a_reader_cannot_change_anything() {
    let (stable, canary) = upstreams();
    let cfg = GatewayConfig::new(&routes(&stable, &canary));
    cfg.write("reader.token", READER);
    cfg.write("writer.token", WRITER);
    let cfg = cfg.with_admin_fields(
        "tokens: [{ name: reader, token_file: reader.token, role: read }, { name: writer, token_file: writer.token, role: write }]",
    );
    let gw = cfg.start();
    let traffic = Traffic::start(gw.addr(), 2, Duration::from_millis(20), vec![]);
    let judged = poll_rollout(&gw).await;
    assert_eq!(judged["state"], "progressing");

    let seen = drive(&gw, "tokens").await;
    traffic.stop().await;

    let before = &seen["without_token"];
    assert_eq!(before["login_shown"], true, "{seen:#}");
    assert_eq!(before["app_shown"], false, "{seen:#}");
    assert_eq!(before["tabs_shown"], false, "{seen:#}");
    let text = before["text"].as_str().unwrap_or_default();
    assert!(
        !text.contains("shop") && !text.contains("Rollouts"),
        "{text}"
    );

    assert_eq!(seen["who"], "reader (read)");
    let read = seen["read_buttons"].as_object().expect("buttons");
    assert_eq!(read.len(), 4, "{seen:#}");
    assert!(read.values().all(|e| e == false), "{seen:#}");
    let rollbacks = seen["read_rollback_enabled"].as_array().expect("rollbacks");
    assert!(rollbacks.iter().all(|e| e == false), "{seen:#}");
    assert_eq!(seen["read_post_status"], 403, "{seen:#}");
    assert_eq!(seen["state_after_read_post"], "progressing");
    assert_eq!(seen["foreign_requests"], json!([]), "{seen:#}");
    assert_eq!(seen["console_errors"], json!([]), "{seen:#}");

    assert_eq!(seen["write_buttons"]["pause"], true, "{seen:#}");
    assert_eq!(seen["write_buttons"]["abort"], true, "{seen:#}");
    assert_eq!(seen["token_in_url"], false);
}

/// `/rollouts/shop` with the writer's token, once the gates have judged enough traffic.
async fn poll_rollout(gw: &Dyegate) -> Value {
    let get = || async {
        let resp = Req::new(Method::GET, "/rollouts/shop")
            .header("authorization", &format!("Bearer {WRITER}"))
            .send(gw.admin_addr())
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        serde_json::from_str::<Value>(&resp.text()).expect("JSON")
    };
    match dyegate_suite::poll_until(Duration::from_secs(30), get, |r| {
        r["last_evaluation"]["enough_traffic"] == true
    })
    .await
    {
        Ok(r) | Err(r) => r,
    }
}
