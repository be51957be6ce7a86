//! Splitting untagged traffic end to end: smooth weighted round robin is exact, sticky keys
//! (header, cookie, client address) always land on the same group and spread by weight, and a
//! request without its sticky key falls back to the smooth split.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use dyegate_suite::{upstream_groups, Conn, Dyegate, Req, Upstream};
use http::StatusCode;

/// Upstreams named after their groups, and a gateway whose one route has `route_body` after
/// `- name: shop` (split, sticky, ...).
struct Fixture {
    ups: Vec<Upstream>,
    gw: Dyegate,
}

impl Fixture {
    fn start(groups: &[&str], route_body: &str) -> Self {
        let ups: Vec<Upstream> = groups.iter().map(|g| Upstream::start(g)).collect();
        let named: Vec<(&str, &Upstream)> = groups.iter().copied().zip(ups.iter()).collect();
        let gw = Dyegate::start(&format!(
            "{}routes:\n  - name: shop\n{route_body}",
            upstream_groups(&named)
        ));
        Self { ups, gw }
    }

    fn count(&self, name: &str) -> usize {
        self.ups
            .iter()
            .find(|u| u.name() == name)
            .map_or(0, Upstream::request_count)
    }
}

/// Sends `n` requests made by `req(i)` on one kept-alive connection; returns the upstream that
/// answered each, in order.
async fn sequence(gw: &Dyegate, n: usize, req: impl Fn(usize) -> Req) -> Vec<String> {
    let mut conn = Conn::http1(gw.addr()).await;
    let mut order = Vec::with_capacity(n);
    for i in 0..n {
        let resp = conn.send(req(i)).await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}: {}", resp.text());
        order.push(
            resp.upstream()
                .expect("x-upstream on a proxied answer")
                .to_owned(),
        );
    }
    order
}

fn tally(order: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for name in order {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn smooth_split_is_exact_over_2000_requests() {
    let fx = Fixture::start(
        &["shop-stable", "shop-canary"],
        "    split:
      - { upstream: shop-stable, weight: 95 }
      - { upstream: shop-canary, weight: 5 }
",
    );
    let order = sequence(&fx.gw, 2000, |_| Req::get("/")).await;

    let counts = tally(&order);
    assert_eq!(counts.get("shop-stable"), Some(&1900), "{counts:?}");
    assert_eq!(counts.get("shop-canary"), Some(&100), "{counts:?}");
    // Smooth: the sequence repeats every 100 requests (the weight total), so every window of
    // 100 consecutive requests holds exactly 5 canaries, and canaries never come in a row.
    for (start, window) in order.windows(100).enumerate() {
        let canaries = window.iter().filter(|n| *n == "shop-canary").count();
        assert_eq!(canaries, 5, "requests {start}..{}", start + 100);
    }
    assert!(order
        .windows(2)
        .all(|w| w[0] != w[1] || w[0] == "shop-stable"));
    // The upstreams agree with what the client saw.
    assert_eq!(fx.count("shop-stable"), 1900);
    assert_eq!(fx.count("shop-canary"), 100);
}

#[tokio::test]
async fn three_way_split_is_exact() {
    let fx = Fixture::start(
        &["a", "b", "c"],
        "    split:
      - { upstream: a, weight: 5 }
      - { upstream: b, weight: 3 }
      - { upstream: c, weight: 2 }
",
    );
    let order = sequence(&fx.gw, 1000, |_| Req::get("/")).await;
    let counts = tally(&order);
    assert_eq!(counts.get("a"), Some(&500), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&300), "{counts:?}");
    assert_eq!(counts.get("c"), Some(&200), "{counts:?}");
    for (start, window) in order.windows(10).enumerate() {
        let counts = tally(window);
        assert_eq!(
            (counts.get("a"), counts.get("b"), counts.get("c")),
            (Some(&5), Some(&3), Some(&2)),
            "requests {start}..{}",
            start + 10
        );
    }
}

#[tokio::test]
async fn split_counts_hold_across_many_client_connections() {
    let fx = Fixture::start(
        &["shop-stable", "shop-canary"],
        "    split:
      - { upstream: shop-stable, weight: 3 }
      - { upstream: shop-canary, weight: 1 }
",
    );
    // A new connection per request: the split state is per route, not per connection.
    for _ in 0..200 {
        let resp = Req::get("/").send(fx.gw.addr()).await;
        assert_eq!(resp.status, StatusCode::OK);
    }
    assert_eq!(fx.count("shop-stable"), 150);
    assert_eq!(fx.count("shop-canary"), 50);
}

/// Sends every key `rounds` times (all keys once, then again...) and checks that each key
/// always got the same group; returns how many keys went to each group.
async fn sticky_assignment(
    gw: &Dyegate,
    keys: &[String],
    rounds: usize,
    req: impl Fn(&str) -> Req,
) -> HashMap<String, usize> {
    let mut conn = Conn::http1(gw.addr()).await;
    let mut assigned: HashMap<&str, String> = HashMap::new();
    for round in 0..rounds {
        for key in keys {
            let resp = conn.send(req(key)).await;
            assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
            let upstream = resp.upstream().expect("x-upstream").to_owned();
            let first = assigned.entry(key).or_insert_with(|| upstream.clone());
            assert_eq!(
                *first, upstream,
                "key {key} moved from {first} to {upstream} in round {round}"
            );
        }
    }
    let mut per_group = HashMap::new();
    for group in assigned.into_values() {
        *per_group.entry(group).or_default() += 1;
    }
    per_group
}

fn user_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

#[tokio::test]
async fn sticky_by_header_keeps_each_key_on_one_group() {
    let fx = Fixture::start(
        &["shop-stable", "shop-canary"],
        "    split:
      - { upstream: shop-stable, weight: 80 }
      - { upstream: shop-canary, weight: 20 }
    sticky: header:x-user-id
",
    );
    let keys = user_keys(400);
    let per_group = sticky_assignment(&fx.gw, &keys, 3, |key| {
        Req::get("/").header("x-user-id", key)
    })
    .await;

    // Keys spread roughly by weight: 80 of 400 expected on canary.
    let canary = per_group.get("shop-canary").copied().unwrap_or(0);
    assert!(
        (48..=112).contains(&canary),
        "{canary} of 400 keys on canary: {per_group:?}"
    );
}

#[tokio::test]
async fn sticky_by_cookie_keeps_each_key_on_one_group() {
    let fx = Fixture::start(
        &["shop-stable", "shop-canary"],
        "    split:
      - { upstream: shop-stable, weight: 50 }
      - { upstream: shop-canary, weight: 50 }
    sticky: cookie:uid
",
    );
    let keys = user_keys(200);
    let per_group = sticky_assignment(&fx.gw, &keys, 3, |key| {
        // The sticky cookie among others, in the middle of the header.
        Req::get("/").header("cookie", &format!("theme=dark; uid={key}; lang=en"))
    })
    .await;

    let canary = per_group.get("shop-canary").copied().unwrap_or(0);
    assert!(
        (60..=140).contains(&canary),
        "{canary} of 200 keys on canary: {per_group:?}"
    );
    // The cookie goes upstream untouched.
    let seen = &fx.ups[0].requests()[0];
    assert!(
        seen.header("cookie")
            .is_some_and(|c| c.contains("uid=user-")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_cookie_that_only_ends_with_the_sticky_name_is_not_the_key() {
    let fx = Fixture::start(
        &["shop-stable", "shop-canary"],
        "    split:
      - { upstream: shop-stable, weight: 1 }
      - { upstream: shop-canary, weight: 1 }
    sticky: cookie:uid
",
    );
    // `xuid` is not `uid`: without the key every request is split, so 1:1 alternates exactly.
    let order = sequence(&fx.gw, 20, |_| {
        Req::get("/").header("cookie", "xuid=always-the-same")
    })
    .await;
    let counts = tally(&order);
    assert_eq!(counts.get("shop-stable"), Some(&10), "{order:?}");
    assert_eq!(counts.get("shop-canary"), Some(&10), "{order:?}");
}

#[tokio::test]
async fn a_request_without_the_sticky_key_falls_back_to_the_smooth_split() {
    let fx = Fixture::start(
        &["shop-stable", "shop-canary"],
        "    split:
      - { upstream: shop-stable, weight: 80 }
      - { upstream: shop-canary, weight: 20 }
    sticky: header:x-user-id
",
    );
    // Sticky traffic first, then keyless traffic: the keyless requests alone follow the
    // weights exactly, whatever the sticky ones did.
    sticky_assignment(&fx.gw, &user_keys(37), 1, |key| {
        Req::get("/").header("x-user-id", key)
    })
    .await;
    let order = sequence(&fx.gw, 500, |_| Req::get("/")).await;
    let counts = tally(&order);
    assert_eq!(counts.get("shop-stable"), Some(&400), "{counts:?}");
    assert_eq!(counts.get("shop-canary"), Some(&100), "{counts:?}");
}

#[tokio::test]
async fn sticky_by_client_ip_keeps_each_peer_on_one_group() {
    let fx = Fixture::start(
        &["shop-stable", "shop-canary"],
        "    split:
      - { upstream: shop-stable, weight: 50 }
      - { upstream: shop-canary, weight: 50 }
    sticky: client_ip
",
    );
    let mut per_group: HashMap<String, usize> = HashMap::new();
    for host in 1..=40u8 {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, host));
        let mut conn = Conn::http1_from(source, fx.gw.addr()).await;
        let first = conn.send(Req::get("/")).await;
        let group = first.upstream().expect("x-upstream").to_owned();
        for _ in 0..3 {
            // A new connection (new source port) from the same address as well.
            let again = Req::get("/").send_from(source, fx.gw.addr()).await;
            assert_eq!(again.upstream(), Some(group.as_str()), "peer {source}");
            let same_conn = conn.send(Req::get("/")).await;
            assert_eq!(same_conn.upstream(), Some(group.as_str()), "peer {source}");
        }
        *per_group.entry(group).or_default() += 1;
    }
    // 40 peers at 50/50: both groups get some (all on one side has odds 2^-39).
    assert_eq!(per_group.len(), 2, "{per_group:?}");
}
