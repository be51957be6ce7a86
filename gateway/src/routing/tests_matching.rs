//! Route matching on the tables of `tests/routing/matching.rs`, case by case: host (exact, wildcard,
//! normalised), path prefix, methods, header values, all fields together, first match in file
//! order. The end-to-end tests keep one request per behaviour; the whole tables run here.

use super::{req, route, table, Req};
use crate::routing::{normalize_host, RouteTable};
use http::Method;

/// Groups `a`, `b` and `c`, as the end-to-end fixture names them (nothing dials the targets).
const ABC: &str = "upstreams:\n  a: { targets: [\"127.0.0.1:9001\"] }\n  b: { targets: [\"127.0.0.1:9002\"] }\n  c: { targets: [\"127.0.0.1:9003\"] }\n";

/// `route -> group` for a routed request, `404` when no route matches.
fn to(t: &RouteTable, r: &Req) -> String {
    let (route, group, ..) = route(t, r);
    if route == "404" {
        route
    } else {
        format!("{route} -> {group}")
    }
}

/// A GET of `path` with the `Host` header `raw`, normalised as the proxy does.
fn at(raw: &str, path: &str) -> Req {
    req(&normalize_host(raw), path)
}

#[test]
fn exact_and_wildcard_hosts() {
    let t = table(&format!(
        "{ABC}routes:
  - name: exact
    match: {{ host: shop.example.com }}
    split: [{{ upstream: a, weight: 1 }}]
  - name: wildcard
    match: {{ host: \"*.example.com\" }}
    split: [{{ upstream: b, weight: 1 }}]
"
    ));
    for (host, want) in [
        ("shop.example.com", "exact -> a"),
        ("api.example.com", "wildcard -> b"),
        ("x-1.example.com", "wildcard -> b"),
        // The port in the Host header is not part of the name.
        ("shop.example.com:8080", "exact -> a"),
        // Host names are case-insensitive.
        ("Shop.Example.COM", "exact -> a"),
        // The wildcard needs a label in front of the suffix, and the suffix must match whole
        // labels.
        ("example.com", "404"),
        ("badexample.com", "404"),
        ("shop.example.org", "404"),
    ] {
        assert_eq!(to(&t, &at(host, "/")), want, "{host}");
    }
}

#[test]
fn path_prefix() {
    let t = table(&format!(
        "{ABC}routes:
  - name: api
    match: {{ path_prefix: /api }}
    split: [{{ upstream: a, weight: 1 }}]
  - name: rest
    split: [{{ upstream: b, weight: 1 }}]
"
    ));
    for (path, want) in [
        ("/api", "api -> a"),
        ("/api/cart/7", "api -> a"),
        ("/", "rest -> b"),
        ("/static/api", "rest -> b"),
        ("/ap", "rest -> b"),
    ] {
        assert_eq!(to(&t, &req("h", path)), want, "{path}");
    }
}

#[test]
fn methods() {
    let t = table(&format!(
        "{ABC}routes:
  - name: reads-and-posts
    match: {{ methods: [GET, POST] }}
    split: [{{ upstream: a, weight: 1 }}]
  - name: rest
    split: [{{ upstream: b, weight: 1 }}]
"
    ));
    for (method, want) in [
        (Method::GET, "reads-and-posts -> a"),
        (Method::POST, "reads-and-posts -> a"),
        (Method::PUT, "rest -> b"),
        (Method::DELETE, "rest -> b"),
    ] {
        assert_eq!(
            to(&t, &req("h", "/").method(method.clone())),
            want,
            "{method}"
        );
    }
}

#[test]
fn headers_with_allowed_values() {
    let t = table(&format!(
        "{ABC}routes:
  - name: apps
    match:
      headers: {{ x-client: [mobile, web] }}
    split: [{{ upstream: a, weight: 1 }}]
  - name: rest
    split: [{{ upstream: b, weight: 1 }}]
"
    ));
    for (value, want) in [
        (Some("mobile"), "apps -> a"),
        (Some("web"), "apps -> a"),
        (Some("desktop"), "rest -> b"),
        (Some(""), "rest -> b"),
        (None, "rest -> b"),
    ] {
        let r = match value {
            Some(v) => req("h", "/").header("x-client", v),
            None => req("h", "/"),
        };
        assert_eq!(to(&t, &r), want, "x-client: {value:?}");
    }
}

#[test]
fn every_given_match_field_must_hold() {
    let t = table(&format!(
        "{ABC}routes:
  - name: narrow
    match:
      host: shop.example.com
      path_prefix: /api
      methods: [POST]
      headers: {{ x-client: [mobile] }}
    split: [{{ upstream: a, weight: 1 }}]
  - name: rest
    split: [{{ upstream: b, weight: 1 }}]
"
    ));
    let r = |host: &str, path: &str, method: Method, client: &str| {
        at(host, path).method(method).header("x-client", client)
    };
    let host = "shop.example.com";
    for (why, request, want) in [
        (
            "all hold",
            r(host, "/api/x", Method::POST, "mobile"),
            "narrow -> a",
        ),
        (
            "host differs",
            r("www.example.com", "/api/x", Method::POST, "mobile"),
            "rest -> b",
        ),
        (
            "path differs",
            r(host, "/web/x", Method::POST, "mobile"),
            "rest -> b",
        ),
        (
            "method differs",
            r(host, "/api/x", Method::GET, "mobile"),
            "rest -> b",
        ),
        (
            "header differs",
            r(host, "/api/x", Method::POST, "web"),
            "rest -> b",
        ),
    ] {
        assert_eq!(to(&t, &request), want, "{why}");
    }
}

#[test]
fn the_first_matching_route_in_file_order_wins() {
    let t = table(&format!(
        "{ABC}routes:
  - name: v2
    match: {{ path_prefix: /api/v2 }}
    split: [{{ upstream: a, weight: 1 }}]
  - name: api
    match: {{ path_prefix: /api }}
    split: [{{ upstream: b, weight: 1 }}]
  - name: v2-shadowed
    match: {{ path_prefix: /api/v2/cart }}
    split: [{{ upstream: c, weight: 1 }}]
  - name: everything
    split: [{{ upstream: c, weight: 1 }}]
"
    ));
    for (path, want) in [
        ("/api/v2/items", "v2 -> a"),
        // A longer prefix further down never beats an earlier match.
        ("/api/v2/cart", "v2 -> a"),
        ("/api/v1", "api -> b"),
        ("/", "everything -> c"),
    ] {
        assert_eq!(to(&t, &req("h", path)), want, "{path}");
    }
}

#[test]
fn an_early_catch_all_route_shadows_everything_after_it() {
    let t = table(&format!(
        "{ABC}routes:
  - name: everything
    split: [{{ upstream: c, weight: 1 }}]
  - name: exact
    match: {{ host: shop.example.com, path_prefix: /api }}
    split: [{{ upstream: a, weight: 1 }}]
"
    ));
    assert_eq!(to(&t, &at("shop.example.com", "/api")), "everything -> c");
}
