//! `x-dyegate-debug: 1` from a trusted peer gets the decision back in `x-dyegate-decision`:
//! `route=shop; group=shop-canary; reason=fallback_unhealthy; tag=canary; target=10.0.0.3:80;
//! version=12; tries=2; match=host,cookies.plan; miss=shop-beta:headers.x-beta`. Absent values
//! read `none`. `match` lists the conditions of the route taken (`any` when it has none), `miss`
//! the route tried before it that failed furthest into its conditions, and the condition that
//! failed. Everyone else gets nothing.

use dyegate_plugins::TrustedSources;
use http::HeaderMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

pub const DEBUG_HEADER: &str = "x-dyegate-debug";
pub const DECISION_HEADER: &str = "x-dyegate-decision";

/// gateway.yaml `debug`, compiled.
#[derive(Debug, Clone)]
pub struct DebugPolicy {
    trusted: TrustedSources,
}

impl DebugPolicy {
    pub fn new(trusted: TrustedSources) -> Self {
        DebugPolicy { trusted }
    }

    /// Whether this request asked for the decision and may see it.
    pub fn wants(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> bool {
        static NAME: http::HeaderName = http::HeaderName::from_static(DEBUG_HEADER);
        // An empty list trusts nobody here (for dye tags it trusts everybody): then no lookup.
        self.trusted.is_restricted()
            && headers.get(&NAME).is_some_and(|v| v.as_bytes() == b"1")
            && self.trusted.trusts(peer)
    }
}

/// The parts of the header value.
#[derive(Debug, Default)]
pub struct Explanation<'a> {
    pub route: Option<&'a str>,
    pub group: Option<&'a str>,
    pub reason: &'a str,
    pub tag: Option<&'a str>,
    pub target: Option<SocketAddr>,
    pub version: u64,
    pub tries: usize,
    /// The conditions of the route taken (`none` when empty).
    pub matched: &'a str,
    /// The nearest miss, `ROUTE:CONDITION` (`none` when empty).
    pub miss: &'a str,
}

impl<'a> Explanation<'a> {
    pub fn value(&self) -> String {
        let mut s = String::with_capacity(128);
        let _ = write!(
            s,
            "route={}; group={}; reason={}; tag={}; target=",
            self.route.unwrap_or("none"),
            self.group.unwrap_or("none"),
            self.reason,
            self.tag.unwrap_or("none"),
        );
        match self.target {
            Some(t) => {
                let _ = write!(s, "{t}");
            }
            None => s.push_str("none"),
        }
        let _ = write!(s, "; version={}; tries={}", self.version, self.tries);
        let or_none = |v: &'a str| if v.is_empty() { "none" } else { v };
        let _ = write!(
            s,
            "; match={}; miss={}",
            or_none(self.matched),
            or_none(self.miss)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_reads_like_the_issue_says() {
        let e = Explanation {
            route: Some("shop"),
            group: Some("shop-canary"),
            reason: "fallback_unhealthy",
            tag: Some("canary"),
            target: Some("10.0.0.3:80".parse().expect("addr")),
            version: 12,
            tries: 2,
            matched: "host,cookies.plan",
            miss: "shop-beta:headers.x-beta",
        };
        assert_eq!(
            e.value(),
            "route=shop; group=shop-canary; reason=fallback_unhealthy; tag=canary; target=10.0.0.3:80; version=12; tries=2; match=host,cookies.plan; miss=shop-beta:headers.x-beta"
        );
        assert_eq!(
            Explanation {
                reason: "no_route",
                version: 3,
                ..Default::default()
            }
            .value(),
            "route=none; group=none; reason=no_route; tag=none; target=none; version=3; tries=0; match=none; miss=none"
        );
    }

    #[test]
    fn only_trusted_peers_that_ask() {
        let p = DebugPolicy::new(TrustedSources::new(vec!["127.0.0.0/8"
            .parse()
            .expect("net")]));
        let mut h = HeaderMap::new();
        let lo = Some(IpAddr::from([127, 0, 0, 1]));
        assert!(!p.wants(&h, lo), "not asked");
        h.insert(DEBUG_HEADER, http::HeaderValue::from_static("1"));
        assert!(p.wants(&h, lo));
        assert!(!p.wants(&h, Some(IpAddr::from([10, 0, 0, 1]))));
        assert!(!p.wants(&h, None));
        h.insert(DEBUG_HEADER, http::HeaderValue::from_static("true"));
        assert!(!p.wants(&h, lo));
        h.insert(DEBUG_HEADER, http::HeaderValue::from_static("1"));
        assert!(
            !DebugPolicy::new(TrustedSources::default()).wants(&h, lo),
            "[] is nobody"
        );
    }
}
