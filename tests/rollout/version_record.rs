//! A rollout's step is weights set over the routes file as written, never a rewrite of its text
//! (issue 28): the version a step makes keeps the file's text and the weights beside it
//! (`overrides` in `GET /versions/N`, covered by its sha256), `dyegate versions N` shows both,
//! and `rollback --write-file` writes the weights into the text it writes.

use std::time::Duration;

use dyegate_suite::rollout::*;
use dyegate_suite::Dyegate;
use serde_json::json;

/// Step 1 at once, each later step only by a promote (a minute per step).
const SLOW: &str = "steps: [20, 50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 1, max_error_rate: 0.5 }";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_keeps_the_text_as_written_and_its_weights_beside_it() {
    let (stable, canary) = upstreams();
    let text = routes(&stable, &canary, SLOW, "");
    let gw = Dyegate::start(&text);
    wait_rollout(&gw, Duration::from_secs(20), "step 1", |r| r["step"] == 1).await;
    let version = gw.version().await;
    assert!(version >= 2, "step 1 is a version of its own");

    // The record: the file's text byte for byte, the step's weights beside it.
    let record = gw.admin_get(&format!("/versions/{version}")).await;
    assert_eq!(record["trigger"], "rollout", "{record:#}");
    assert_eq!(record["source"], json!(text), "the text as written");
    assert_eq!(
        record["overrides"],
        json!({ "shop": [8000, 2000] }),
        "{record:#}"
    );
    let status = gw.status().await;
    assert_eq!(status["sha256"], record["sha256"], "{status:#}");
    assert_eq!(status["matches_file"], false, "{status:#}");

    // `dyegate versions N`: the weights in a comment, then the text as written.
    let out = gw
        .config()
        .cli(&["versions", &version.to_string(), "-o", "table"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains(
            "# served with weights set over this text by rollouts (route: split weights):\n#   shop: [8000,2000]\n"
        ),
        "{out}"
    );
    assert!(out.stdout.ends_with(&text), "{out}");

    // An unrelated edit: a new version, same step, the weights still beside the new text.
    edit_unrelated(&gw, &text).await;
    let after = gw.version().await;
    assert!(after > version);
    let record = gw.admin_get(&format!("/versions/{after}")).await;
    assert_eq!(
        record["overrides"],
        json!({ "shop": [8000, 2000] }),
        "{record:#}"
    );

    // Back to the step's version, written to the file with its weights in the split.
    let out = gw.config().cli(&[
        "rollback",
        "--to",
        &version.to_string(),
        "--write-file",
        "-o",
        "table",
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("with the rollouts' weights written in: its reload applies the same routing as a new version"),
        "{out}"
    );
    let written = std::fs::read_to_string(gw.config().routes_file()).expect("routes.yaml");
    assert_eq!(
        written,
        text.replace(
            "      - { upstream: stable, weight: 100 }\n      - { upstream: canary, weight: 0 }",
            "      - { upstream: stable, weight: 8000 }\n      - { upstream: canary, weight: 2000 }"
        )
    );
}
