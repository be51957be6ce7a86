//! Dye tags end to end: a tag header picks the group its tag maps to, unknown tags follow the
//! route's policy, tags travel upstream, and tags from untrusted peers are stripped.
//!
//! One request per behaviour: the decisions themselves (tag to group, `on_unknown_tag`, the
//! tag header's name, what a split does to the tag, the split's exact shares) are unit-tested
//! next to the decision, in `gateway/src/routing/tests.rs`.

use std::net::{IpAddr, Ipv4Addr};

use dyegate_suite::{upstream_groups, Conn, Dyegate, Req, Upstream};
use http::StatusCode;

const SHOP: &str = "shop.example.com";

/// Three groups of one upstream each, named like the groups.
struct Shop {
    stable: Upstream,
    canary: Upstream,
    feat42: Upstream,
}

impl Shop {
    fn start() -> Self {
        Self {
            stable: Upstream::start("shop-stable"),
            canary: Upstream::start("shop-canary"),
            feat42: Upstream::start("shop-feat42"),
        }
    }

    fn upstreams(&self) -> String {
        upstream_groups(&[
            ("shop-stable", &self.stable),
            ("shop-canary", &self.canary),
            ("shop-feat42", &self.feat42),
        ])
    }

    /// One route for the shop host: tags canary and feat-42, all untagged traffic to stable.
    fn gateway(&self, dye_extra: &str) -> Dyegate {
        Dyegate::start(&format!(
            "{upstreams}\
routes:
  - name: shop
    match:
      host: {SHOP}
    dye:
      tags: {{ canary: shop-canary, feat-42: shop-feat42 }}
{dye_extra}
    split:
      - {{ upstream: shop-stable, weight: 1 }}
",
            upstreams = self.upstreams(),
        ))
    }
}

#[tokio::test]
async fn each_tag_goes_to_its_group_and_untagged_to_the_split() {
    let shop = Shop::start();
    let gw = shop.gateway("");
    let mut conn = Conn::http1(gw.addr()).await;

    let untagged = conn.send(Req::get("/").host(SHOP)).await;
    assert_eq!(untagged.status, StatusCode::OK, "{}", untagged.text());
    assert_eq!(untagged.upstream(), Some("shop-stable"));

    for (tag, group) in [("canary", "shop-canary"), ("feat-42", "shop-feat42")] {
        let resp = conn
            .send(Req::get("/").host(SHOP).header("x-env-tag", tag))
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        assert_eq!(resp.upstream(), Some(group), "tag {tag}");
    }
    assert_eq!(shop.stable.request_count(), 1);
    assert_eq!(shop.canary.request_count(), 1);
    assert_eq!(shop.feat42.request_count(), 1);
}

#[tokio::test]
async fn the_tag_header_is_forwarded_upstream() {
    let shop = Shop::start();
    let gw = shop.gateway("");

    let resp = Req::get("/api/cart?id=7")
        .host(SHOP)
        .header("x-env-tag", "canary")
        .send(gw.addr())
        .await;

    assert_eq!(resp.upstream(), Some("shop-canary"));
    assert_eq!(resp.echoed_header("x-env-tag").as_deref(), Some("canary"));
    let seen = shop.canary.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/cart");
    assert_eq!(seen[0].query.as_deref(), Some("id=7"));
    assert_eq!(seen[0].header_all("x-env-tag"), vec!["canary"]);
}

#[tokio::test]
async fn a_route_can_name_its_own_tag_header() {
    let shop = Shop::start();
    let gw = shop.gateway("      header: x-dye\n");

    let resp = Req::get("/")
        .host(SHOP)
        .header("x-dye", "feat-42")
        .send(gw.addr())
        .await;
    assert_eq!(resp.upstream(), Some("shop-feat42"));
}

#[tokio::test]
async fn an_unknown_tag_routes_as_untagged_by_default() {
    let shop = Shop::start();
    let gw = shop.gateway("");

    let resp = Req::get("/")
        .host(SHOP)
        .header("x-env-tag", "no-such-tag")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.upstream(), Some("shop-stable"));
    assert_eq!(shop.canary.request_count() + shop.feat42.request_count(), 0);
}

#[tokio::test]
async fn an_unknown_tag_is_refused_with_503_under_the_reject_policy() {
    let shop = Shop::start();
    let gw = shop.gateway("      on_unknown_tag: reject\n");
    let mut conn = Conn::http1(gw.addr()).await;

    let resp = conn
        .send(Req::get("/").host(SHOP).header("x-env-tag", "no-such-tag"))
        .await;
    assert_eq!(resp.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.upstream(), None);
    assert_eq!(
        shop.stable.request_count() + shop.canary.request_count() + shop.feat42.request_count(),
        0,
        "a rejected request reached an upstream"
    );
}

#[tokio::test]
async fn a_tag_from_an_untrusted_peer_is_stripped() {
    let shop = Shop::start();
    // The tests connect from 127.0.0.1, which is outside 10.0.0.0/8.
    let gw = shop.gateway("      trusted_sources: [10.0.0.0/8]\n");

    let resp = Req::get("/")
        .host(SHOP)
        .header("x-env-tag", "canary")
        .send(gw.addr())
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(
        resp.upstream(),
        Some("shop-stable"),
        "an untrusted tag routed"
    );
    assert_eq!(shop.canary.request_count(), 0);
    let seen = shop.stable.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("x-env-tag"),
        None,
        "an untrusted tag was forwarded"
    );
}

#[tokio::test]
async fn trusted_sources_are_matched_per_peer_address() {
    let shop = Shop::start();
    let gw = shop.gateway("      trusted_sources: [127.0.0.1/32]\n");
    let trusted = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let untrusted = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    let resp = Req::get("/")
        .host(SHOP)
        .header("x-env-tag", "canary")
        .send_from(trusted, gw.addr())
        .await;
    assert_eq!(resp.upstream(), Some("shop-canary"));
    assert_eq!(resp.echoed_header("x-env-tag").as_deref(), Some("canary"));

    let resp = Req::get("/")
        .host(SHOP)
        .header("x-env-tag", "canary")
        .send_from(untrusted, gw.addr())
        .await;
    assert_eq!(resp.upstream(), Some("shop-stable"));
    assert_eq!(resp.echoed_header("x-env-tag"), None);
}

#[tokio::test]
async fn an_untagged_request_split_to_a_tagged_group_carries_that_tag() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = Dyegate::start(&format!(
        "{}\
routes:
  - name: shop
    dye:
      tags: {{ canary: shop-canary }}
    split:
      - {{ upstream: shop-stable, weight: 1 }}
      - {{ upstream: shop-canary, weight: 1 }}
",
        upstream_groups(&[("shop-stable", &stable), ("shop-canary", &canary)])
    ));
    let mut conn = Conn::http1(gw.addr()).await;
    // Two requests, one per lane of the 1:1 split.
    for _ in 0..2 {
        let resp = conn.send(Req::get("/").host(SHOP)).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    }

    assert_eq!(stable.request_count(), 1);
    assert_eq!(canary.request_count(), 1);
    for req in canary.requests() {
        assert_eq!(req.header_all("x-env-tag"), vec!["canary"]);
    }
    for req in stable.requests() {
        assert_eq!(req.header("x-env-tag"), None);
    }
}

/// Stable and canary at 1:1 with a `canary` tag and `dye_extra` lines in the dye section.
fn half_and_half(stable: &Upstream, canary: &Upstream, dye_extra: &str) -> Dyegate {
    Dyegate::start(&format!(
        "{}\
routes:
  - name: shop
    dye:
      tags: {{ canary: shop-canary }}
{dye_extra}
    split:
      - {{ upstream: shop-stable, weight: 1 }}
      - {{ upstream: shop-canary, weight: 1 }}
",
        upstream_groups(&[("shop-stable", stable), ("shop-canary", canary)])
    ))
}

#[tokio::test]
async fn an_unknown_tag_split_to_a_tagged_group_is_replaced_by_that_tag() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = half_and_half(&stable, &canary, "");
    let mut conn = Conn::http1(gw.addr()).await;
    // Two requests, one per lane of the 1:1 split.
    for _ in 0..2 {
        let resp = conn
            .send(Req::get("/").header("x-env-tag", "no-such-tag"))
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    }
    assert_eq!(stable.request_count(), 1);
    assert_eq!(canary.request_count(), 1);
    for req in canary.requests() {
        assert_eq!(req.header_all("x-env-tag"), vec!["canary"], "{req:?}");
    }
}

#[tokio::test]
async fn a_stripped_untrusted_tag_is_replaced_when_the_split_picks_a_tagged_group() {
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = half_and_half(&stable, &canary, "      trusted_sources: [10.0.0.0/8]");
    let mut conn = Conn::http1(gw.addr()).await;
    // Two requests, one per lane of the 1:1 split.
    for _ in 0..2 {
        let resp = conn.send(Req::get("/").header("x-env-tag", "canary")).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    }
    // The untrusted tag did not route: the split did, 1:1.
    assert_eq!(stable.request_count(), 1);
    assert_eq!(canary.request_count(), 1);
    for req in stable.requests() {
        assert_eq!(req.header("x-env-tag"), None, "{req:?}");
    }
    for req in canary.requests() {
        assert_eq!(req.header_all("x-env-tag"), vec!["canary"], "{req:?}");
    }
}
