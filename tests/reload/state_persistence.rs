//! State that cannot be written is never lost silently (issue 18, item 3): `run` refuses a
//! state_dir or an audit log it cannot write; a failed history or audit write while serving is
//! an error in the log, the answer, `/status` and a metric, leaves no temporary file behind; and
//! version numbers are never given out twice, even when the history index was lost.

use std::time::Duration;

use dyegate_suite::metrics::Scrape;
use dyegate_suite::{upstream_groups, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;

const SETTLE: Duration = Duration::from_secs(5);

fn routes(up: &Upstream, weight: u32) -> String {
    format!(
        "{}routes:\n  - name: all\n    split: [{{ upstream: a, weight: {weight} }}]\n",
        upstream_groups(&[("a", up)])
    )
}

fn with_state_dir(config: GatewayConfig, state_dir: &str) -> GatewayConfig {
    let text = config
        .gateway_text()
        .replace("state_dir: ./state", &format!("state_dir: {state_dir}"));
    config.write("gateway.yaml", &text);
    config
}

#[test]
fn run_refuses_a_state_dir_it_cannot_write() {
    let up = Upstream::start("a");
    let config = with_state_dir(GatewayConfig::new(&routes(&up, 1)), "/proc/dyegate-state");
    let out = config.run_to_exit();
    assert!(!out.timed_out, "dyegate kept running:\n{out}");
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stderr
            .contains("dyegate: not started: state_dir /proc/dyegate-state: cannot write"),
        "{out}"
    );
}

#[test]
fn run_refuses_an_audit_log_it_cannot_write() {
    let up = Upstream::start("a");
    // /dev/full opens for appending and fails every write with ENOSPC: a full filesystem.
    let config = GatewayConfig::new(&routes(&up, 1))
        .gateway_extra("reload: { audit_log: /dev/full, watch: false }");
    let out = config.run_to_exit();
    assert!(!out.timed_out, "dyegate kept running:\n{out}");
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stderr
            .contains("dyegate: not started: audit log /dev/full: cannot write"),
        "{out}"
    );
}

fn temp_files(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("versions")] {
        for e in std::fs::read_dir(sub).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp.") {
                found.push(name);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_failed_history_write_is_reported_and_numbers_are_never_reused() {
    let up = Upstream::start("a");
    let gw = GatewayConfig::new(&routes(&up, 1))
        .gateway_extra("reload: { watch: false }")
        .start();
    assert_eq!(gw.version().await, 1);
    let state = gw.config().path("state");
    // The versions directory becomes a file: the next version's source cannot be written.
    std::fs::remove_dir_all(state.join("versions")).expect("rm versions/");
    std::fs::write(state.join("versions"), "not a directory").expect("versions as a file");

    gw.config().write("routes.yaml", &routes(&up, 2));
    let (code, report) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{report:#}");
    assert_eq!(report["result"], "applied", "{report:#}");
    assert_eq!(report["version_after"], 2, "{report:#}");
    let errors = report["state_errors"]
        .as_array()
        .expect("state_errors in the answer");
    assert!(
        errors.len() == 1
            && errors[0]
                .as_str()
                .unwrap_or("")
                .contains("state_dir (version)"),
        "{report:#}"
    );
    // The change is in effect: traffic goes on.
    assert_eq!(Req::get("/").send(gw.addr()).await.status, StatusCode::OK);
    let status = gw.status().await;
    assert_eq!(status["state_errors"]["count"], 1, "{status:#}");
    assert_eq!(
        status["state_errors"]["last"]["what"], "version",
        "{status:#}"
    );
    let text = Req::get("/metrics").send(gw.admin_addr()).await.text();
    let scrape = Scrape::parse(&text);
    assert_eq!(
        scrape.value("dyegate_state_write_errors_total", &[("what", "version")]),
        1.0
    );
    assert_eq!(
        scrape.value("dyegate_state_write_errors_total", &[("what", "audit")]),
        0.0
    );
    assert!(
        gw.stderr().contains("state: state_dir (version):"),
        "{}",
        gw.logs()
    );
    assert_eq!(temp_files(&state), Vec::<String>::new());
    // The audit line still names version 2 (the audit log can be written).
    let last = gw.config().audit_records().pop().expect("an audit line");
    assert_eq!(last["version_after"], 2);

    // Restart with the directory repaired and another edit: version 2 was served, so the new
    // content must not be numbered 2 again, though history.json only knows version 1.
    let config = gw.stop();
    std::fs::remove_file(state.join("versions")).expect("rm the file");
    config.write("routes.yaml", &routes(&up, 3));
    let gw = config.start();
    let version = gw.version().await;
    assert_eq!(version, 3, "version numbers must not go backwards");
    gw.wait_for_status(SETTLE, "no state errors", |s| {
        s["state_errors"]["count"] == 0
    })
    .await;
}

#[tokio::test]
async fn numbers_continue_after_the_history_index_is_lost() {
    let up = Upstream::start("a");
    let gw: Dyegate = GatewayConfig::new(&routes(&up, 1))
        .gateway_extra("reload: { watch: false }")
        .start();
    for (w, v) in [(2, 2), (3, 3)] {
        gw.config().write("routes.yaml", &routes(&up, w));
        let (_, report) = gw.admin_post("/reload", None).await;
        assert_eq!(report["version_after"], v, "{report:#}");
    }
    let config = gw.stop();
    std::fs::remove_file(config.path("state/history.json")).expect("rm history.json");
    config.write("routes.yaml", &routes(&up, 4));
    let gw = config.start();
    assert_eq!(gw.version().await, 4);
}
