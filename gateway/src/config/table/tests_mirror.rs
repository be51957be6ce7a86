//! `routes[i].mirror`: the issue's example compiles; bad input pinned to its whole error line.

use crate::config::routes_from_text;
use std::time::Duration;

fn errors(text: &str) -> Vec<String> {
    match routes_from_text("routes.yaml", text.as_bytes().to_vec(), None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// Route `shop` to stable, with `mirror` (the indented lines under it).
fn mirror(body: &str) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"127.0.0.1:9001\"] }}\n  shop-canary: {{ targets: [\"127.0.0.1:9002\"] }}\nroutes:\n  - name: shop\n    split:\n      - {{ upstream: stable, weight: 100 }}\n    mirror:\n{body}"
    )
}

const GOOD: &str = "      - upstream: shop-canary\n        percent: 10\n        max_body_bytes: 65536\n        max_in_flight: 256\n        timeout_ms: 2000\n";
const COMPARE: &str =
    "        compare: { status: true, body: hash, ignore_headers: [date, x-request-id] }\n";

#[test]
fn the_issue_example_compiles() {
    let loaded = routes_from_text("routes.yaml", mirror(GOOD).into_bytes(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let route = &loaded.table.routes()[0];
    let m = &route.mirror[0];
    assert_eq!(m.group, 1);
    assert_eq!(m.share, 10_000);
    assert_eq!((m.max_body_bytes, m.max_in_flight), (65_536, 256));
    assert_eq!(m.timeout, Duration::from_secs(2));
    assert_eq!(m.methods, crate::routing::default_methods());
    assert!(m.compare.is_none());
    let loaded = routes_from_text(
        "routes.yaml",
        mirror(&format!("{GOOD}{COMPARE}")).into_bytes(),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let compare = (loaded.table.routes()[0].mirror[0].compare.clone()).expect("compare");
    assert!(compare.status && compare.body);
    assert_eq!(
        compare.ignore_headers,
        vec![
            http::HeaderName::from_static("date"),
            http::HeaderName::from_static("x-request-id")
        ]
    );
    let minimal = "      - { upstream: shop-canary, percent: 0.001, methods: [get, put] }\n";
    let loaded = routes_from_text("routes.yaml", mirror(minimal).into_bytes(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let m = &loaded.table.routes()[0].mirror[0];
    assert_eq!(
        (m.share, m.max_body_bytes, m.max_in_flight),
        (1, 65_536, 256)
    );
    assert_eq!(m.methods, vec![http::Method::GET, http::Method::PUT]);
    assert!(m.compare.is_none());
}

#[test]
fn errors_are_located() {
    let with = |from: &str, to: &str| errors(&mirror(&GOOD.replace(from, to)));
    let compare =
        |from: &str, to: &str| errors(&mirror(&format!("{GOOD}{}", COMPARE.replace(from, to))));
    assert_eq!(
        with("upstream: shop-canary", "upstream: shop-canry"),
        vec!["routes.yaml:9:19: routes[0].mirror[0].upstream: found unknown upstream \"shop-canry\", expected one of `shop-canary`, `stable`"]
    );
    assert_eq!(
        with("percent: 10", "percent: 150"),
        vec!["routes.yaml:10:18: routes[0].mirror[0].percent: found 150, expected a number from 0.001 to 100"]
    );
    assert_eq!(
        with("percent: 10", "percent: 0"),
        vec!["routes.yaml:10:18: routes[0].mirror[0].percent: found 0, expected a number from 0.001 to 100"]
    );
    assert_eq!(
        with("max_in_flight: 256", "max_in_flight: 0"),
        vec!["routes.yaml:12:24: routes[0].mirror[0].max_in_flight: found 0, expected a whole number from 1 to 100000"]
    );
    assert_eq!(
        with("timeout_ms: 2000", "timeout_ms: 0"),
        vec!["routes.yaml:13:21: routes[0].mirror[0].timeout_ms: found 0, expected a whole number of milliseconds from 1 to 86400000"]
    );
    assert_eq!(
        compare("body: hash", "body: hash, baseline: stabel"),
        vec!["routes.yaml:14:56: routes[0].mirror[0].compare.baseline: found unknown upstream \"stabel\", expected one of `shop-canary`, `stable`"]
    );
    assert_eq!(
        compare("body: hash", "body: hash, baseline: shop-canary"),
        vec!["routes.yaml:14:56: routes[0].mirror[0].compare.baseline: found \"shop-canary\", the mirrored group itself, expected another (stable) group"]
    );
    assert_eq!(
        compare("body: hash", "body: bytes"),
        vec!["routes.yaml:14:40: routes[0].mirror[0].compare.body: found \"bytes\", expected one of `hash`, `ignore`"]
    );
    assert_eq!(
        compare("ignore_headers: [date,", "ignore_headers: [\"da te\","),
        vec!["routes.yaml:14:63: routes[0].mirror[0].compare.ignore_headers[0]: found \"da te\", expected a valid HTTP header name such as date"]
    );
    assert_eq!(
        with("timeout_ms", "timeout"),
        vec!["routes.yaml:13:9: routes[0].mirror[0].timeout: found unknown field `timeout`, expected one of `upstream`, `percent`, `max_body_bytes`, `max_in_flight`, `timeout_ms`, `methods`, `compare`"]
    );
    let twice = format!("{GOOD}      - {{ upstream: shop-canary, percent: 1, methods: [] }}\n");
    assert_eq!(
        errors(&mirror(&twice)),
        vec![
            "routes.yaml:14:21: routes[0].mirror[1].upstream: found upstream \"shop-canary\" twice in this route's mirrors (also mirror[0]), expected each group once",
            "routes.yaml:14:55: routes[0].mirror[1].methods: found an empty list, expected at least one method (omit the field for GET, HEAD, OPTIONS)",
        ]
    );
    let bad_method = "      - { upstream: shop-canary, percent: 1, methods: [\"G T\"] }\n";
    assert_eq!(
        errors(&mirror(bad_method)),
        vec!["routes.yaml:9:56: routes[0].mirror[0].methods[0]: found \"G T\", expected an HTTP method such as GET or PUT"]
    );
}

#[test]
fn a_shadow_stage_set_over_a_route_mirrors_it_until_it_is_taken_away() {
    use crate::config::routes_from_text_over;
    use crate::routing::{Overrides, ShadowMirror};
    let max = crate::config::bounds::DEFAULT_MAX_FILE_BYTES;
    let compile =
        |text: String, previous: Option<&crate::config::incremental::Reuse>, o: &Overrides| {
            routes_from_text_over("routes.yaml", text.into_bytes(), previous, max, &mut |_| {
                o.clone()
            })
            .unwrap_or_else(|e| panic!("{e}"))
        };
    let mut over = Overrides::default();
    over.set_shadow(
        "shop",
        Some(ShadowMirror {
            group: "shop-canary".into(),
            share: 100_000,
        }),
    );
    // The route's entry to the group keeps its settings and takes the stage's share.
    let text = mirror(GOOD);
    let written = compile(text.clone(), None, &Overrides::default());
    let staged = compile(text.clone(), written.reuse.as_ref(), &over);
    let m = &staged.table.routes()[0].mirror;
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].share, m[0].max_in_flight), (100_000, 256));
    // Taken away: the written share again, on the same unchanged text.
    let back = compile(text, staged.reuse.as_ref(), &Overrides::default());
    assert_eq!(back.table.routes()[0].mirror[0].share, 10_000);
    // A route without such an entry gets one with the defaults, comparing statuses and bodies.
    let plain = "upstreams:\n  stable: { targets: [\"127.0.0.1:9001\"] }\n  shop-canary: { targets: [\"127.0.0.1:9002\"] }\nroutes:\n  - name: shop\n    split:\n      - { upstream: stable, weight: 100 }\n".to_string();
    let first = compile(plain.clone(), None, &Overrides::default());
    assert!(first.table.routes()[0].mirror.is_empty());
    let staged = compile(plain.clone(), first.reuse.as_ref(), &over);
    let m = &staged.table.routes()[0].mirror;
    assert_eq!((m.len(), m[0].group, m[0].share), (1, 1, 100_000));
    assert_eq!(
        (m[0].max_in_flight, m[0].timeout),
        (256, Duration::from_secs(2))
    );
    assert!(m[0].compare.as_ref().is_some_and(|c| c.status && c.body));
    let back = compile(plain, staged.reuse.as_ref(), &Overrides::default());
    assert!(back.table.routes()[0].mirror.is_empty());
}
