//! `x-dyegate-debug: 1` from a trusted peer gets the decision back in `x-dyegate-decision`:
//! `route=shop; group=shop-canary; reason=fallback_unhealthy; tag=canary; target=10.0.0.3:80;
//! version=12; tries=2`. Absent values read `none`. Everyone else gets nothing.

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
}

impl Explanation<'_> {
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
        };
        assert_eq!(
            e.value(),
            "route=shop; group=shop-canary; reason=fallback_unhealthy; tag=canary; target=10.0.0.3:80; version=12; tries=2"
        );
        assert_eq!(
            Explanation {
                reason: "no_route",
                version: 3,
                ..Default::default()
            }
            .value(),
            "route=none; group=none; reason=no_route; tag=none; target=none; version=3; tries=0"
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
