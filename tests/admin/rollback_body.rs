//! `POST /rollback` reads its body strictly: an empty body rolls back to the previous version,
//! `{"to": N}` to version N, and anything else (`{"too": 1}`, `5`, `null`, `{"to": null}`) is a
//! 400 that names the allowed field, with nothing rolled back. (`{}` is the previous version,
//! as an empty body.)

use std::time::Duration;

use dyegate_suite::{upstream_groups, GatewayConfig, Upstream};
use http::StatusCode;

#[tokio::test]
async fn a_body_without_a_valid_to_is_refused_and_nothing_rolls_back() {
    let blue = Upstream::start("blue");
    let green = Upstream::start("green");
    let routes = |group: &str| {
        format!(
            "{}routes:\n  - name: all\n    split: [{{ upstream: {group}, weight: 1 }}]\n",
            upstream_groups(&[("blue", &blue), ("green", &green)])
        )
    };
    let gw = GatewayConfig::new(&routes("blue")).start();
    gw.config().write("routes.yaml", &routes("green"));
    gw.wait_for_status(Duration::from_secs(5), "version 2", |s| s["version"] == 2)
        .await;

    for body in [
        r#"{"too": 1}"#,
        "5",
        "null",
        r#"{"to": 1, "force": true}"#,
        r#"{"to": "1"}"#,
        r#"{"to": null}"#,
        "[1]",
    ] {
        let (code, answer) = gw.admin_post("/rollback", Some(body)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {answer:#}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("`to`") || error.contains("\"to\""),
            "{body}: the error names the field: {error}"
        );
        assert_eq!(gw.version().await, 2, "{body} rolled back");
    }

    // The two valid forms still work: {"to": N} and an empty body (the previous version).
    let (code, answer) = gw.admin_post("/rollback", Some(r#"{"to": 1}"#)).await;
    assert_eq!(code, StatusCode::OK, "{answer:#}");
    assert_eq!(answer["rollback_to"], 1, "{answer:#}");
    let (code, answer) = gw.admin_post("/rollback", None).await;
    assert_eq!(code, StatusCode::OK, "{answer:#}");
    assert_eq!(answer["version_after"], 4, "{answer:#}");
}
