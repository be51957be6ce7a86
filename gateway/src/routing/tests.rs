//! The routing decision on tables compiled from routes.yaml text: match order, tags, splits.

use super::*;
use crate::config::routes_from_text;
use http::{HeaderMap, HeaderValue, Method};
use std::net::IpAddr;

fn table(text: &str) -> std::sync::Arc<RouteTable> {
    routes_from_text("routes.yaml", text.as_bytes().to_vec(), None)
        .unwrap_or_else(|e| panic!("{e}"))
        .table
}

struct Req {
    method: Method,
    host: String,
    path: String,
    headers: HeaderMap,
    peer: Option<IpAddr>,
}

fn req(host: &str, path: &str) -> Req {
    Req {
        method: Method::GET,
        host: host.into(),
        path: path.into(),
        headers: HeaderMap::new(),
        peer: "127.0.0.1".parse().ok(),
    }
}

impl Req {
    fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers
            .append(k, HeaderValue::from_str(v).expect("header value"));
        self
    }
    fn method(mut self, m: Method) -> Self {
        self.method = m;
        self
    }
    fn peer(mut self, ip: &str) -> Self {
        self.peer = ip.parse().ok();
        self
    }
}

/// (route name, group name, reason, tag sent upstream) or "404" / "503".
fn route(t: &RouteTable, r: &Req) -> (String, String, &'static str, Option<String>) {
    let (path, query) = match r.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (r.path.as_str(), None),
    };
    let info = RequestInfo {
        method: &r.method,
        host: &r.host,
        path,
        query,
        headers: &r.headers,
        client: r.peer,
        parsed: &Parsed::default(),
    };
    match t.decide(&info) {
        Outcome::Routed(d) => (
            t.route(d.route_id)
                .map(|r| r.name.to_string())
                .unwrap_or_default(),
            t.group(d.group)
                .map(|g| g.name.to_string())
                .unwrap_or_default(),
            d.reason.as_str(),
            match d.tag_action {
                TagAction::Set(s) => Some(format!("set:{s}")),
                TagAction::Strip => Some("strip".into()),
                TagAction::Keep => d.tag.map(|t| format!("keep:{t}")),
            },
        ),
        Outcome::NoRoute => ("404".into(), String::new(), "", None),
        Outcome::RejectedTag { .. } => ("503".into(), String::new(), "", None),
        Outcome::NoHealthyTarget { .. } => ("503".into(), String::new(), "", None),
    }
}

const UPS: &str = "upstreams:\n  stable: { targets: [\"127.0.0.1:9001\"] }\n  canary: { targets: [\"127.0.0.1:9002\"] }\n  feat: { targets: [\"127.0.0.1:9003\"] }\n";

#[test]
fn first_match_in_file_order_across_index_buckets() {
    let t = table(&format!(
        "{UPS}routes:\n\
  - {{ name: api-mobile, match: {{ path_prefix: /api, headers: {{ x-client: [mobile] }} }}, split: [{{upstream: canary, weight: 1}}] }}\n\
  - {{ name: shop-exact, match: {{ host: shop.example.com }}, split: [{{upstream: stable, weight: 1}}] }}\n\
  - {{ name: wildcard-api, match: {{ host: \"*.example.com\", path_prefix: /api/v2 }}, split: [{{upstream: feat, weight: 1}}] }}\n\
  - {{ name: wildcard, match: {{ host: \"*.example.com\" }}, split: [{{upstream: canary, weight: 1}}] }}\n\
  - {{ name: posts, match: {{ methods: [POST] }}, split: [{{upstream: feat, weight: 1}}] }}\n\
  - {{ name: root, match: {{ path_prefix: / , host: example.org }}, split: [{{upstream: stable, weight: 1}}] }}\n"
    ));
    assert_eq!(
        route(
            &t,
            &req("shop.example.com", "/api/x").header("x-client", "mobile")
        )
        .0,
        "api-mobile"
    );
    assert_eq!(
        route(&t, &req("shop.example.com", "/api/v2/x")).0,
        "shop-exact"
    );
    assert_eq!(
        route(&t, &req("a.example.com", "/api/v2/x")).0,
        "wildcard-api"
    );
    assert_eq!(route(&t, &req("a.b.example.com", "/api/v1")).0, "wildcard");
    assert_eq!(route(&t, &req("example.com", "/")).0, "404");
    assert_eq!(
        route(&t, &req("other.net", "/").method(Method::POST)).0,
        "posts"
    );
    assert_eq!(route(&t, &req("example.org", "/x")).0, "root");
    assert_eq!(route(&t, &req("example.org", "")).0, "404");
    assert_eq!(route(&t, &req("other.net", "/")).0, "404");
}

#[test]
fn tag_routing_unknown_tags_and_trust() {
    let t = table(&format!(
        "{UPS}{}",
        r#"routes:
  - name: base
    match: { path_prefix: /base }
    dye: { tags: { canary: canary, feat-42: feat } }
    split: [{upstream: stable, weight: 1}]
  - name: strict
    match: { path_prefix: /strict }
    dye: { tags: { canary: canary }, on_unknown_tag: reject }
    split: [{upstream: stable, weight: 1}]
  - name: trusted
    match: { path_prefix: /trusted }
    dye: { header: x-lane, tags: { canary: canary }, trusted_sources: [10.0.0.0/8] }
    split: [{upstream: stable, weight: 1}]
"#
    ));
    let tagged = |p: &str, tag: &str| route(&t, &req("h", p).header("x-env-tag", tag));
    assert_eq!(
        tagged("/base", "canary"),
        (
            "base".into(),
            "canary".into(),
            "tag",
            Some("keep:canary".into())
        )
    );
    assert_eq!(tagged("/base", "feat-42").1, "feat");
    assert_eq!(
        tagged("/base", "nope"),
        (
            "base".into(),
            "stable".into(),
            "fallback",
            Some("keep:nope".into())
        )
    );
    assert_eq!(
        tagged("/base", "bad tag!"),
        (
            "base".into(),
            "stable".into(),
            "split",
            Some("strip".into())
        )
    );
    assert_eq!(
        route(&t, &req("h", "/base")),
        ("base".into(), "stable".into(), "split", None)
    );
    assert_eq!(tagged("/strict", "nope").0, "503");
    assert_eq!(tagged("/strict", "canary").1, "canary");
    // x-lane is the header of this route; peers outside 10/8 have their tag stripped.
    let lane = |peer: &str| {
        route(
            &t,
            &req("h", "/trusted").header("x-lane", "canary").peer(peer),
        )
    };
    assert_eq!(
        lane("127.0.0.1"),
        (
            "trusted".into(),
            "stable".into(),
            "split",
            Some("strip".into())
        )
    );
    assert_eq!(
        lane("10.9.8.7"),
        (
            "trusted".into(),
            "canary".into(),
            "tag",
            Some("keep:canary".into())
        )
    );
}

/// The groups and route of `tests/routing/dye.rs`: tags canary and feat-42, all untagged traffic to
/// stable, `dye_extra` lines in the dye section.
fn dye_shop(dye_extra: &str) -> std::sync::Arc<RouteTable> {
    table(&format!(
        "upstreams:
  shop-stable: {{ targets: [\"127.0.0.1:9001\"] }}
  shop-canary: {{ targets: [\"127.0.0.1:9002\"] }}
  shop-feat42: {{ targets: [\"127.0.0.1:9003\"] }}
routes:
  - name: shop
    match:
      host: shop.example.com
    dye:
      tags: {{ canary: shop-canary, feat-42: shop-feat42 }}
{dye_extra}
    split:
      - {{ upstream: shop-stable, weight: 1 }}
"
    ))
}

type Routed = (String, String, &'static str, Option<String>);

fn routed(group: &str, reason: &'static str, tag: Option<&str>) -> Routed {
    ("shop".into(), group.into(), reason, tag.map(String::from))
}

#[test]
fn unknown_tags_route_as_untagged_by_default_and_under_an_explicit_base_policy() {
    for dye_extra in ["", "      on_unknown_tag: base\n"] {
        let t = dye_shop(dye_extra);
        let shop = |r: Req| route(&t, &r);
        assert_eq!(
            shop(req("shop.example.com", "/").header("x-env-tag", "no-such-tag")),
            routed("shop-stable", "fallback", Some("keep:no-such-tag")),
            "{dye_extra:?}"
        );
    }
}

#[test]
fn the_reject_policy_leaves_known_tags_and_untagged_traffic_alone() {
    let t = dye_shop("      on_unknown_tag: reject\n");
    let shop = |r: Req| route(&t, &r);
    assert_eq!(
        shop(req("shop.example.com", "/").header("x-env-tag", "no-such-tag")).0,
        "503"
    );
    assert_eq!(
        shop(req("shop.example.com", "/").header("x-env-tag", "canary")),
        routed("shop-canary", "tag", Some("keep:canary"))
    );
    assert_eq!(
        shop(req("shop.example.com", "/")),
        routed("shop-stable", "split", None)
    );
}

#[test]
fn a_route_with_its_own_tag_header_ignores_the_default_one() {
    let t = dye_shop("      header: x-dye\n");
    let shop = |r: Req| route(&t, &r);
    assert_eq!(
        shop(req("shop.example.com", "/").header("x-dye", "feat-42")),
        routed("shop-feat42", "tag", Some("keep:feat-42"))
    );
    assert_eq!(
        shop(req("shop.example.com", "/").header("x-env-tag", "feat-42")),
        routed("shop-stable", "split", None)
    );
}

/// A 1:1 split between stable and a group tag `canary` names: whatever tag the request came
/// with (none, unknown, untrusted), the split decides, and a request it sends to canary carries
/// `canary`; on stable the request's own header is kept, or stripped when untrusted.
#[test]
fn a_split_to_a_tagged_group_sets_that_tag_whatever_the_request_carried() {
    let half_and_half = |dye_extra: &str| {
        table(&format!(
            "upstreams:
  shop-stable: {{ targets: [\"127.0.0.1:9001\"] }}
  shop-canary: {{ targets: [\"127.0.0.1:9002\"] }}
routes:
  - name: shop
    dye:
      tags: {{ canary: shop-canary }}
{dye_extra}
    split:
      - {{ upstream: shop-stable, weight: 1 }}
      - {{ upstream: shop-canary, weight: 1 }}
"
        ))
    };
    let cases = [
        ("untagged", "", None, "split", None),
        (
            "unknown tag",
            "",
            Some("no-such-tag"),
            "fallback",
            Some("keep:no-such-tag"),
        ),
        (
            "untrusted tag",
            "      trusted_sources: [10.0.0.0/8]",
            Some("canary"),
            "split",
            Some("strip"),
        ),
    ];
    for (name, dye_extra, tag, reason, on_stable) in cases {
        let t = half_and_half(dye_extra);
        let r = match tag {
            Some(tag) => req("h", "/").header("x-env-tag", tag),
            None => req("h", "/"),
        };
        let mut on = std::collections::BTreeMap::new();
        for _ in 0..20 {
            let (route_name, group, why, action) = route(&t, &r);
            assert_eq!((route_name.as_str(), why), ("shop", reason), "{name}");
            let want = match group.as_str() {
                "shop-canary" => Some("set:canary"),
                _ => on_stable,
            };
            assert_eq!(action.as_deref(), want, "{name}: {group}");
            *on.entry(group).or_insert(0) += 1;
        }
        assert_eq!(
            on.into_iter().collect::<Vec<_>>(),
            [
                ("shop-canary".to_string(), 10),
                ("shop-stable".to_string(), 10)
            ],
            "{name}"
        );
    }
}

#[test]
fn split_sets_the_tag_of_the_chosen_lane_exactly_by_weight() {
    let t = table(&format!(
        "{UPS}routes:\n  - name: r\n    dye: {{ tags: {{ canary: canary }} }}\n    split: [{{upstream: stable, weight: 95}}, {{upstream: canary, weight: 5}}]\n"
    ));
    let mut canary = 0;
    for _ in 0..2000 {
        let (_, group, reason, tag) = route(&t, &req("h", "/"));
        assert_eq!(reason, "split");
        if group == "canary" {
            canary += 1;
            assert_eq!(tag.as_deref(), Some("set:canary"));
        } else {
            assert_eq!(tag, None);
        }
    }
    assert_eq!(canary, 100);
}

#[test]
fn sticky_by_header_cookie_and_ip_with_fallback() {
    for sticky in ["header:x-user-id", "cookie:uid", "client_ip"] {
        let t = table(&format!(
            "{UPS}routes:\n  - name: r\n    sticky: \"{sticky}\"\n    split: [{{upstream: stable, weight: 50}}, {{upstream: canary, weight: 50}}]\n"
        ));
        let mut seen = std::collections::HashMap::new();
        for i in 0..300 {
            let user = format!("user-{i}");
            let r = req("h", "/")
                .header("x-user-id", &user)
                .header("cookie", &format!("a=1; uid={user}; b=2"))
                .peer(&format!("10.0.{}.{}", i / 250, i % 250));
            for _ in 0..3 {
                let (_, group, reason, _) = route(&t, &r);
                assert_eq!(reason, "sticky", "{sticky}");
                assert_eq!(seen.entry(i).or_insert_with(|| group.clone()), &group);
            }
        }
        let canary = seen.values().filter(|g| *g == "canary").count();
        assert!(
            (100..200).contains(&canary),
            "{sticky}: {canary} of 300 on canary"
        );
    }
    // Without the key: the smooth split decides.
    let t = table(&format!(
        "{UPS}routes:\n  - name: r\n    sticky: header:x-user-id\n    split: [{{upstream: stable, weight: 1}}, {{upstream: canary, weight: 1}}]\n"
    ));
    let groups: Vec<String> = (0..4).map(|_| route(&t, &req("h", "/")).1).collect();
    assert_eq!(groups, ["stable", "canary", "stable", "canary"]);
    assert_eq!(route(&t, &req("h", "/")).2, "split");
}

#[test]
fn sticky_ramp_keeps_canary_users_across_reloads() {
    let build = |w: u32| {
        table(&format!(
            "{UPS}routes:\n  - name: r\n    sticky: header:x-user-id\n    split: [{{upstream: stable, weight: {}}}, {{upstream: canary, weight: {w}}}]\n",
            100 - w
        ))
    };
    let (t5, t20) = (build(5), build(20));
    let mut on5 = 0;
    for i in 0..10_000 {
        let r = req("h", "/").header("x-user-id", &format!("u{i}"));
        if route(&t5, &r).1 == "canary" {
            on5 += 1;
            assert_eq!(route(&t20, &r).1, "canary");
        }
    }
    assert!((400..600).contains(&on5), "{on5}");
}

#[test]
fn targets_round_robin_by_weight() {
    let t = table("upstreams:\n  g: { targets: [\"127.0.0.1:1\", { addr: \"127.0.0.1:2\", weight: 2 }, { addr: \"127.0.0.1:3\", weight: 0 }] }\nroutes:\n  - { name: r, split: [{ upstream: g, weight: 1 }] }\n");
    let g = t.group(0).and_then(|g| g.fixed_members()).expect("group");
    let ports: Vec<u16> = (0..6)
        .filter_map(|_| g.next_target())
        .map(|t| t.addr.port())
        .collect();
    assert_eq!(ports.iter().filter(|p| **p == 2).count(), 4);
    assert!(!ports.contains(&3));
    assert_eq!(
        g.pick_other(&["127.0.0.1:2".parse().expect("addr")], &AllHealthy)
            .map(|t| t.addr.port()),
        Some(1)
    );
}

#[test]
fn host_normalisation() {
    assert_eq!(normalize_host("Shop.Example.COM:8080"), "shop.example.com");
    assert_eq!(normalize_host("[::1]:8080"), "[::1]");
    assert_eq!(normalize_host("example.com."), "example.com");
}

#[path = "tests_matching.rs"]
mod matching;

#[path = "tests_conditions.rs"]
mod tests_conditions;

#[path = "tests_explain.rs"]
mod tests_explain;
