//! A YAML alias bomb saved as routes.yaml is rejected (located error, the old table serving)
//! without the process keeping hundreds of MB: expansion through aliases is bounded relative
//! to the document, so the rejection comes before the tree grows.

use dyegate_suite::procfs::rss_kib;
use std::time::Duration;

use dyegate_suite::{GatewayConfig, Req, Upstream};
use http::StatusCode;

/// Ten levels of ten aliases each: 10^10 nodes once expanded, 1 KB of text.
fn bomb() -> String {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        let refs = vec![format!("*a{p}"); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text
}

#[tokio::test]
async fn a_rejected_alias_bomb_leaves_memory_as_it_was() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target()
    ))
    .start();
    assert_eq!(Req::get("/").send(gw.addr()).await.status, StatusCode::OK);
    let before = rss_kib(gw.pid());

    gw.config().write("routes.yaml", &bomb());
    let status = gw
        .wait_for_status(Duration::from_secs(20), "a failed reload", |s| {
            s["last_error"]["errors"].is_array()
        })
        .await;
    let error = status["last_error"]["errors"].to_string();
    assert!(error.contains("routes.yaml:"), "located: {error}");
    assert!(error.contains("alias"), "names the aliases: {error}");
    assert_eq!(Req::get("/").send(gw.addr()).await.status, StatusCode::OK);

    let after = rss_kib(gw.pid());
    eprintln!("RSS before the bomb {before} KiB, after its rejection {after} KiB");
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB after a rejected 1 KB alias bomb"
    );
}
