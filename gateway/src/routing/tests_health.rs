//! The decision with a health view: targets that may not be picked are skipped (weights kept
//! among the rest), a tagged lane with no healthy target falls back or is refused as the route
//! says, and an untagged split never moves to another group by itself.

use super::*;
use crate::config::routes_from_text;
use http::{HeaderMap, HeaderValue, Method};
use std::collections::HashSet;
use std::net::SocketAddr;

/// Targets down by address.
struct Down(HashSet<SocketAddr>);

impl Down {
    fn ports(ports: &[u16]) -> Down {
        Down(
            ports
                .iter()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
                .collect(),
        )
    }
}

impl TargetHealth for Down {
    fn any_down(&self) -> bool {
        !self.0.is_empty()
    }
    fn is_available(&self, addr: SocketAddr) -> bool {
        !self.0.contains(&addr)
    }
}

fn table(text: &str) -> std::sync::Arc<RouteTable> {
    routes_from_text("routes.yaml", text.as_bytes().to_vec(), None)
        .unwrap_or_else(|e| panic!("{e}"))
        .table
}

const LANES: &str = "upstreams:
  stable: { targets: [\"127.0.0.1:1\", \"127.0.0.1:2\"] }
  canary: { targets: [\"127.0.0.1:3\"] }
routes:
  - name: shop
    dye: { tags: { canary: canary }, on_unhealthy_tag: ON }
    split: [{ upstream: stable, weight: 9 }, { upstream: canary, weight: 1 }]
";

/// (reason, group name) or ("503 no_healthy_target", group name).
fn decide(t: &RouteTable, tag: Option<&str>, health: &impl TargetHealth) -> (String, String) {
    let mut headers = HeaderMap::new();
    if let Some(tag) = tag {
        headers.insert("x-env-tag", HeaderValue::from_str(tag).expect("tag"));
    }
    let info = RequestInfo {
        method: &Method::GET,
        host: "shop",
        path: "/",
        query: None,
        headers: &headers,
        client: None,
        parsed: &crate::routing::Parsed::default(),
    };
    let name = |g: GroupId| t.group(g).map(|g| g.name.to_string()).unwrap_or_default();
    match t.decide_with(&info, health, Addresses::none()) {
        Outcome::Routed(d) => (d.reason.as_str().to_string(), name(d.group)),
        Outcome::NoHealthyTarget { group, .. } => ("503".into(), name(group)),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_tagged_lane_with_no_healthy_target_falls_back_to_the_split() {
    let t = table(&LANES.replace("ON", "base"));
    let canary_down = Down::ports(&[3]);
    assert_eq!(
        decide(&t, Some("canary"), &AllHealthy),
        ("tag".into(), "canary".into())
    );
    // The split is 9:1; with the canary down, its turn is not taken silently either.
    let picks: Vec<(String, String)> = (0..10)
        .map(|_| decide(&t, Some("canary"), &canary_down))
        .collect();
    assert!(picks.contains(&("fallback_unhealthy".into(), "stable".into())));
    assert!(
        picks
            .iter()
            .all(|(r, _)| r == "fallback_unhealthy" || r == "503"),
        "{picks:?}"
    );
}

#[test]
fn reject_refuses_a_tagged_lane_with_no_healthy_target() {
    let t = table(&LANES.replace("ON", "reject"));
    assert_eq!(
        decide(&t, Some("canary"), &Down::ports(&[3])),
        ("503".into(), "canary".into())
    );
    assert_eq!(
        decide(&t, Some("canary"), &Down::ports(&[1])),
        ("tag".into(), "canary".into())
    );
}

#[test]
fn an_untagged_split_never_moves_to_another_group_by_itself() {
    let t = table(&LANES.replace("ON", "base"));
    let stable_down = Down::ports(&[1, 2]);
    let picks: Vec<(String, String)> = (0..10).map(|_| decide(&t, None, &stable_down)).collect();
    assert_eq!(
        picks
            .iter()
            .filter(|p| **p == ("503".to_string(), "stable".to_string()))
            .count(),
        9,
        "{picks:?}"
    );
    assert_eq!(
        picks
            .iter()
            .filter(|p| **p == ("split".to_string(), "canary".to_string()))
            .count(),
        1
    );
    // One of two stable targets down: the group still serves.
    assert!((0..10).all(|_| decide(&t, None, &Down::ports(&[1])).0 == "split"));
}

#[test]
fn picks_skip_targets_that_are_down_and_keep_weights_among_the_rest() {
    let t = table("upstreams:\n  g: { targets: [\"127.0.0.1:1\", { addr: \"127.0.0.1:2\", weight: 3 }, \"127.0.0.1:3\"] }\nroutes:\n  - { name: r, split: [{ upstream: g, weight: 1 }] }\n");
    let g = t.group(0).and_then(|g| g.fixed_members()).expect("group");
    let down = Down::ports(&[1]);
    let ports: Vec<u16> = (0..400)
        .filter_map(|_| g.pick(&down))
        .map(|t| t.addr.port())
        .collect();
    assert_eq!(ports.len(), 400);
    assert!(!ports.contains(&1));
    assert_eq!(
        ports.iter().filter(|p| **p == 2).count(),
        300,
        "3:1 between 2 and 3"
    );
    let tried = [SocketAddr::from(([127, 0, 0, 1], 2))];
    assert_eq!(g.pick_other(&tried, &down).map(|t| t.addr.port()), Some(3));
    let all_down = Down::ports(&[1, 2, 3]);
    assert!(g.pick(&all_down).is_none());
    assert!(!g.has_available(&all_down));
    // One target left: a pick for a stale pooled connection goes to it again.
    let two_down = Down::ports(&[1, 3]);
    assert_eq!(
        g.pick_other(&tried, &two_down).map(|t| t.addr.port()),
        Some(2)
    );
}
