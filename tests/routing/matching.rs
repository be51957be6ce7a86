//! Route matching end to end: host (exact and wildcard), path prefix, methods, headers, all
//! fields together, first match in file order, and 404 when nothing matches.
//!
//! One request per behaviour, and what only a real request shows (the `Host` header's port and
//! case, the query, header name case, what the upstream receives): the tables of inputs are
//! unit-tested next to the decision, in `gateway/src/routing/tests_matching.rs`.

use dyegate_suite::{upstream_groups, Conn, Dyegate, Req, Upstream};
use http::{Method, StatusCode};

/// Upstreams `a`, `b` and `c` (groups of the same names) and a gateway with `routes` (YAML
/// text starting at `routes:`).
struct Fixture {
    a: Upstream,
    b: Upstream,
    c: Upstream,
    gw: Dyegate,
}

impl Fixture {
    fn start(routes: &str) -> Self {
        let a = Upstream::start("a");
        let b = Upstream::start("b");
        let c = Upstream::start("c");
        let upstreams = upstream_groups(&[("a", &a), ("b", &b), ("c", &c)]);
        let gw = Dyegate::start(&format!("{upstreams}{routes}"));
        Self { a, b, c, gw }
    }

    /// Which upstream answers `req`, or `None` for a response that no upstream gave.
    async fn answer(&self, req: Req) -> (StatusCode, Option<String>) {
        let resp = req.send(self.gw.addr()).await;
        (resp.status, resp.upstream().map(str::to_owned))
    }

    async fn upstream_of(&self, req: Req) -> Option<String> {
        let (status, upstream) = self.answer(req).await;
        match upstream {
            Some(name) => {
                assert_eq!(status, StatusCode::OK);
                Some(name)
            }
            None => None,
        }
    }

    fn total_requests(&self) -> usize {
        self.a.request_count() + self.b.request_count() + self.c.request_count()
    }
}

fn some(name: &str) -> Option<String> {
    Some(name.to_owned())
}

#[tokio::test]
async fn no_matching_route_is_a_short_plain_404() {
    let fx = Fixture::start(
        "routes:
  - name: shop
    match: { host: shop.example.com }
    split: [{ upstream: a, weight: 1 }]
",
    );
    let resp = Req::get("/")
        .host("other.example.com")
        .send(fx.gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(resp.upstream(), None);
    assert!(
        !resp.body.is_empty() && resp.body.len() < 256,
        "expected a short body, got {:?}",
        resp.text()
    );
    assert!(
        resp.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "content-type: {:?}",
        resp.header("content-type")
    );
    assert_eq!(fx.total_requests(), 0);

    // The 404 leaves the connection usable.
    let mut conn = Conn::http1(fx.gw.addr()).await;
    assert_eq!(
        conn.send(Req::get("/").host("nope.example.com"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let ok = conn.send(Req::get("/").host("shop.example.com")).await;
    assert_eq!(ok.upstream(), Some("a"));
}

#[tokio::test]
async fn exact_and_wildcard_hosts() {
    let fx = Fixture::start(
        "routes:
  - name: exact
    match: { host: shop.example.com }
    split: [{ upstream: a, weight: 1 }]
  - name: wildcard
    match: { host: \"*.example.com\" }
    split: [{ upstream: b, weight: 1 }]
",
    );
    assert_eq!(
        fx.upstream_of(Req::get("/").host("shop.example.com")).await,
        some("a")
    );
    assert_eq!(
        fx.upstream_of(Req::get("/").host("api.example.com")).await,
        some("b")
    );
    // The port in the Host header is not part of the name.
    assert_eq!(
        fx.upstream_of(Req::get("/").host("shop.example.com:8080"))
            .await,
        some("a")
    );
    // Host names are case-insensitive.
    assert_eq!(
        fx.upstream_of(Req::get("/").host("Shop.Example.COM")).await,
        some("a")
    );
}

#[tokio::test]
async fn path_prefix() {
    let fx = Fixture::start(
        "routes:
  - name: api
    match: { path_prefix: /api }
    split: [{ upstream: a, weight: 1 }]
  - name: rest
    split: [{ upstream: b, weight: 1 }]
",
    );
    assert_eq!(fx.upstream_of(Req::get("/api/cart/7")).await, some("a"));
    // The query is not part of the path that is matched.
    assert_eq!(fx.upstream_of(Req::get("/api?x=1")).await, some("a"));
    assert_eq!(fx.upstream_of(Req::get("/static/api")).await, some("b"));
    // The upstream sees the path unchanged.
    let seen = fx.a.requests();
    assert_eq!(seen[0].path, "/api/cart/7");
    assert_eq!(seen[1].query.as_deref(), Some("x=1"));
}

#[tokio::test]
async fn methods() {
    let fx = Fixture::start(
        "routes:
  - name: reads-and-posts
    match: { methods: [GET, POST] }
    split: [{ upstream: a, weight: 1 }]
  - name: rest
    split: [{ upstream: b, weight: 1 }]
",
    );
    assert_eq!(fx.upstream_of(Req::post("/").body("x")).await, some("a"));
    assert_eq!(
        fx.upstream_of(Req::new(Method::DELETE, "/")).await,
        some("b")
    );
    assert_eq!(fx.a.requests()[0].method, "POST");
    assert_eq!(fx.b.requests()[0].method, "DELETE");
}

#[tokio::test]
async fn headers_with_allowed_values() {
    let fx = Fixture::start(
        "routes:
  - name: apps
    match:
      headers: { x-client: [mobile, web] }
    split: [{ upstream: a, weight: 1 }]
  - name: rest
    split: [{ upstream: b, weight: 1 }]
",
    );
    let with = |value: &str| Req::get("/").header("x-client", value);
    assert_eq!(fx.upstream_of(with("mobile")).await, some("a"));
    assert_eq!(fx.upstream_of(with("desktop")).await, some("b"));
    // Header names are case-insensitive.
    assert_eq!(
        fx.upstream_of(Req::get("/").header("X-Client", "web"))
            .await,
        some("a")
    );
}

#[tokio::test]
async fn every_given_match_field_must_hold() {
    let fx = Fixture::start(
        "routes:
  - name: narrow
    match:
      host: shop.example.com
      path_prefix: /api
      methods: [POST]
      headers: { x-client: [mobile] }
    split: [{ upstream: a, weight: 1 }]
  - name: rest
    split: [{ upstream: b, weight: 1 }]
",
    );
    let req = |host: &str, path: &str, method: Method, client: &str| {
        Req::new(method, path).host(host).header("x-client", client)
    };
    let host = "shop.example.com";
    assert_eq!(
        fx.upstream_of(req(host, "/api/x", Method::POST, "mobile"))
            .await,
        some("a")
    );
    assert_eq!(
        fx.upstream_of(req(host, "/api/x", Method::POST, "web"))
            .await,
        some("b"),
        "header differs"
    );
}

#[tokio::test]
async fn the_first_matching_route_in_file_order_wins() {
    let fx = Fixture::start(
        "routes:
  - name: v2
    match: { path_prefix: /api/v2 }
    split: [{ upstream: a, weight: 1 }]
  - name: api
    match: { path_prefix: /api }
    split: [{ upstream: b, weight: 1 }]
  - name: v2-shadowed
    match: { path_prefix: /api/v2/cart }
    split: [{ upstream: c, weight: 1 }]
  - name: everything
    split: [{ upstream: c, weight: 1 }]
",
    );
    // A longer prefix further down never beats an earlier match.
    assert_eq!(fx.upstream_of(Req::get("/api/v2/cart")).await, some("a"));
    assert_eq!(fx.upstream_of(Req::get("/api/v1")).await, some("b"));
    assert_eq!(fx.c.request_count(), 0);
}

#[tokio::test]
async fn an_early_catch_all_route_shadows_everything_after_it() {
    let fx = Fixture::start(
        "routes:
  - name: everything
    split: [{ upstream: c, weight: 1 }]
  - name: exact
    match: { host: shop.example.com, path_prefix: /api }
    split: [{ upstream: a, weight: 1 }]
",
    );
    assert_eq!(
        fx.upstream_of(Req::get("/api").host("shop.example.com"))
            .await,
        some("c")
    );
    assert_eq!(fx.a.request_count(), 0);
}
