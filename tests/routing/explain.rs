//! `dyegate explain` and `POST /explain` end to end: for requests sent to the proxy with
//! `x-dyegate-debug: 1`, the explanation names the same route, reason, tag, `match` and `miss`
//! as the proxy's `x-dyegate-decision`, through the admin API and with `--file` on the same
//! routes file. (1,000 random requests over 200 random routes: the property test next to the
//! decision, `gateway/src/routing/tests_explain.rs`.)

use dyegate_suite::{upstream_groups, Dyegate, Req, Upstream};
use http::StatusCode;
use serde_json::{json, Value};

const ROUTES: &str = r#"routes:
  - name: other
    match: { host: other.example.com }
    split: [{ upstream: stable, weight: 1 }]
  - name: gray
    match: { host: shop.example.com, headers: { x-user-id: { range: [1000, 1999] } } }
    split: [{ upstream: canary, weight: 1 }]
  - name: shop
    match: { host: shop.example.com, path: { prefix: /api } }
    dye: { from: [header, "cookie:env_tag", "query:env"], tags: { canary: canary } }
    split: [{ upstream: stable, weight: 1 }]
"#;

/// The `x-dyegate-decision` parts an explanation names: `route`, `reason`, `tag`, `match`,
/// `miss`.
fn parts(decision: &str) -> Vec<(String, String)> {
    (decision.split("; "))
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| matches!(*k, "route" | "reason" | "tag" | "match" | "miss"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The same parts of an explanation. The decision header says `other` for a tag that none of
/// the route's tags is (as the metrics label it); the explanation says the tag.
fn explained_parts(j: &Value) -> Vec<(String, String)> {
    let s = |k: &str| j[k].as_str().unwrap_or("none").to_string();
    let tag = match s("tag").as_str() {
        "none" | "canary" => s("tag"),
        _ => "other".into(),
    };
    vec![
        ("route".into(), s("route")),
        ("reason".into(), s("reason")),
        ("tag".into(), tag),
        ("match".into(), s("match")),
        ("miss".into(), s("miss")),
    ]
}

#[tokio::test]
async fn explain_names_what_the_decision_header_says() {
    let stable = Upstream::start("stable");
    let canary = Upstream::start("canary");
    let gw = Dyegate::start(&format!(
        "{}{ROUTES}",
        upstream_groups(&[("stable", &stable), ("canary", &canary)])
    ));
    let routes = gw.config().routes_file();
    // (path, headers, cookies) of each request.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: &[Case] = &[
        ("/api/x", &[("x-user-id", "1500")], ""),
        ("/api/x", &[("x-user-id", "abc")], "env_tag=canary"),
        ("/api/x?a=1&env=canary", &[], ""),
        ("/api/x", &[("x-env-tag", "canary")], ""),
        ("/api/x", &[("x-env-tag", "nope")], ""),
        ("/web", &[], ""),
    ];
    for (path, headers, cookie) in cases {
        let mut req = Req::get(path)
            .host("shop.example.com")
            .header("x-dyegate-debug", "1");
        let mut body = json!({ "url": format!("http://shop.example.com{path}"), "headers": [] });
        let mut args: Vec<String> = vec!["explain".into(), "-o".into(), "json".into()];
        for (k, v) in headers.iter() {
            req = req.header(k, v);
            body["headers"]
                .as_array_mut()
                .expect("list")
                .push(json!([k, v]));
            args.extend(["-H".into(), format!("{k}:{v}")]);
        }
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
            let (k, v) = cookie.split_once('=').expect("pair");
            body["cookies"] = json!([[k, v]]);
            args.extend(["--cookie".into(), cookie.to_string()]);
        }
        args.push(format!("http://shop.example.com{path}"));

        let resp = req.send(gw.addr()).await;
        let decision = resp
            .header("x-dyegate-decision")
            .unwrap_or_default()
            .to_string();
        let want = parts(&decision);
        assert_eq!(want.len(), 5, "{decision}");

        let (status, j) = gw.admin_post("/explain", Some(&body.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{j:#}");
        assert_eq!(explained_parts(&j), want, "POST /explain of {path}: {j:#}");
        assert_eq!(j["version"], 1);

        // The CLI, through the admin API and on the file.
        let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gw.config().cli(&args_ref);
        assert_eq!(out.code, Some(0), "{out:?}");
        let j: Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(explained_parts(&j), want, "dyegate explain {args:?}");
        let mut on_file = args_ref.clone();
        let routes = routes.to_str().unwrap_or_default();
        on_file.splice(1..1, ["--file", routes]);
        let out = gw.config().cli(&on_file);
        assert_eq!(out.code, Some(0), "{out:?}");
        let j: Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(explained_parts(&j), want, "dyegate explain {on_file:?}");
    }
}

#[tokio::test]
async fn a_malformed_explain_request_is_a_400_naming_the_field() {
    let stable = Upstream::start("stable");
    let canary = Upstream::start("canary");
    let gw = Dyegate::start(&format!(
        "{}{ROUTES}",
        upstream_groups(&[("stable", &stable), ("canary", &canary)])
    ));
    let (status, j) = gw.admin_post("/explain", Some(r#"{"url": "/x"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        j["error"],
        "url: found \"/x\" without a host, expected http://HOST/PATH or a host header"
    );
    let (status, _) = gw.admin_post("/explain", Some(r#"{"uri": "/x"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
