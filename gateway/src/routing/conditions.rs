//! The typed conditions of a route's `match` beyond host and methods: the path (prefix, exact,
//! regex), value tests on headers, query parameters and cookies (one of, regex, present, range,
//! none of), and client networks. Built only by `config::table::compile`; regexes are compiled
//! there once per table version.

use ipnet::IpNet;
use regex::bytes::Regex;
use std::net::IpAddr;

/// `match.path` (or `match.path_prefix`, which is `Prefix`), on the raw path: not
/// percent-decoded, without the query.
#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// Search semantics: `^...$` anchors. `prefix`: the literal text every match starts with,
    /// when the pattern is anchored at the start (`^/api/v[0-9]+` → `/api/v`): the index files
    /// the route under it, so it is only tried for paths that start so.
    Regex {
        re: Regex,
        prefix: Option<Box<str>>,
    },
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
            PathMatch::Regex { re, .. } => re.is_match(path.as_bytes()),
        }
    }

    /// The prefix every matching path starts with, for the index (`None` for a regex without
    /// a literal start: such a route is checked in order inside its host bucket).
    pub fn index_prefix(&self) -> Option<&str> {
        match self {
            PathMatch::Prefix(p) | PathMatch::Exact(p) => Some(p),
            PathMatch::Regex { prefix, .. } => prefix.as_deref(),
        }
    }

    /// The key as the config writes it: `prefix`, `exact` or `regex`.
    pub fn kind(&self) -> &'static str {
        match self {
            PathMatch::Prefix(_) => "prefix",
            PathMatch::Exact(_) => "exact",
            PathMatch::Regex { .. } => "regex",
        }
    }
}

impl PartialEq for PathMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathMatch::Prefix(a), PathMatch::Prefix(b)) => a == b,
            (PathMatch::Exact(a), PathMatch::Exact(b)) => a == b,
            (PathMatch::Regex { re: a, .. }, PathMatch::Regex { re: b, .. }) => {
                a.as_str() == b.as_str()
            }
            _ => false,
        }
    }
}

/// A test on the values one name has in a request (the lines of a header, the values of a
/// query parameter, the pairs of a cookie).
#[derive(Debug, Clone)]
pub enum ValueMatch {
    /// `[a, b]`: some value is one of these.
    OneOf(Vec<Box<[u8]>>),
    /// `{ regex: ... }`: some value matches (search semantics).
    Regex(Regex),
    /// `{ present: true }`: some value exists; `{ present: false }`: none does.
    Present(bool),
    /// `{ range: [lo, hi] }`: some value is a decimal integer within, inclusive.
    Range(i64, i64),
    /// `{ not: [a, b] }`: no value is one of these (absent holds).
    NoneOf(Vec<Box<[u8]>>),
}

impl ValueMatch {
    /// Whether the condition holds over all of a name's values.
    pub fn holds<'v>(&self, mut values: impl Iterator<Item = &'v [u8]>) -> bool {
        match self {
            ValueMatch::OneOf(allowed) => values.any(|v| allowed.iter().any(|a| **a == *v)),
            ValueMatch::Regex(r) => values.any(|v| r.is_match(v)),
            ValueMatch::Present(want) => values.next().is_some() == *want,
            ValueMatch::Range(lo, hi) => {
                values.any(|v| decimal(v).is_some_and(|n| *lo <= n && n <= *hi))
            }
            ValueMatch::NoneOf(denied) => !values.any(|v| denied.iter().any(|d| **d == *v)),
        }
    }

    /// The key as the config writes it (`regex`, `present`, ...; `values` for a plain list).
    pub fn kind(&self) -> &'static str {
        match self {
            ValueMatch::OneOf(_) => "values",
            ValueMatch::Regex(_) => "regex",
            ValueMatch::Present(_) => "present",
            ValueMatch::Range(..) => "range",
            ValueMatch::NoneOf(_) => "not",
        }
    }

    /// Whether every name-value set `other` holds on, `self` holds on too (conservative:
    /// `false` when it cannot tell; `not` never covers a value list, as a name may have
    /// another, denied value too). Used to find unreachable routes.
    pub fn covers(&self, other: &ValueMatch) -> bool {
        use ValueMatch::*;
        match (self, other) {
            (OneOf(a), OneOf(b)) => b.iter().all(|v| a.contains(v)),
            (Regex(a), Regex(b)) => a.as_str() == b.as_str(),
            (Present(true), OneOf(_) | Regex(_) | Range(..) | Present(true)) => true,
            (Present(false), Present(false)) => true,
            (Range(a0, a1), Range(b0, b1)) => a0 <= b0 && b1 <= a1,
            (NoneOf(a), NoneOf(b)) => a.iter().all(|v| b.contains(v)),
            _ => false,
        }
    }
}

impl PartialEq for ValueMatch {
    fn eq(&self, other: &Self) -> bool {
        use ValueMatch::*;
        match (self, other) {
            (OneOf(a), OneOf(b)) | (NoneOf(a), NoneOf(b)) => a == b,
            (Regex(a), Regex(b)) => a.as_str() == b.as_str(),
            (Present(a), Present(b)) => a == b,
            (Range(a0, a1), Range(b0, b1)) => a0 == b0 && a1 == b1,
            _ => false,
        }
    }
}

/// A signed 64-bit decimal integer: an optional `-`, then digits only. Anything else (a sign
/// `+`, spaces, a fraction, a value past the 64-bit range) is `None`.
pub fn decimal(v: &[u8]) -> Option<i64> {
    let (negative, digits) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut n: i64 = 0;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        // Accumulated negative so that i64::MIN parses.
        n = n.checked_mul(10)?.checked_sub(d)?;
    }
    if negative {
        Some(n)
    } else {
        n.checked_neg()
    }
}

/// `match.client_ip`: the networks, one of which holds the request's client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks(pub Vec<IpNet>);

impl Networks {
    /// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, on dual-stack listeners) is matched as
    /// IPv4; no address (a Unix socket) matches nothing.
    pub fn contains(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else { return false };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// Whether every address `other` holds, `self` holds.
    pub fn covers(&self, other: &Networks) -> bool {
        other.0.iter().all(|b| self.0.iter().any(|a| a.contains(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals<'a>(v: &'a [&'a str]) -> impl Iterator<Item = &'a [u8]> {
        v.iter().map(|s| s.as_bytes())
    }

    fn list(v: &[&str]) -> Vec<Box<[u8]>> {
        v.iter().map(|s| s.as_bytes().into()).collect()
    }

    #[test]
    fn decimal_integers_only() {
        assert_eq!(decimal(b"1000"), Some(1000));
        assert_eq!(decimal(b"-7"), Some(-7));
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(decimal(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"9223372036854775808"[..],
            b"-9223372036854775809",
            b"99999999999999999999999",
            b"",
            b"-",
            b"+5",
            b" 5",
            b"5 ",
            b"1.5",
            b"1e3",
            b"0x10",
            b"abc",
        ] {
            assert_eq!(decimal(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn each_form_on_values() {
        let one_of = ValueMatch::OneOf(list(&["web", "mobile"]));
        assert!(one_of.holds(vals(&["tv", "web"])));
        assert!(!one_of.holds(vals(&["tv"])));
        assert!(!one_of.holds(vals(&[])));

        let re = ValueMatch::Regex(Regex::new("^eu-").expect("re"));
        assert!(re.holds(vals(&["us-1", "eu-west"])));
        assert!(!re.holds(vals(&["us-eu-1"])));
        let unanchored = ValueMatch::Regex(Regex::new("eu").expect("re"));
        assert!(unanchored.holds(vals(&["us-eu-1"])), "search semantics");

        assert!(ValueMatch::Present(true).holds(vals(&[""])));
        assert!(!ValueMatch::Present(true).holds(vals(&[])));
        assert!(ValueMatch::Present(false).holds(vals(&[])));
        assert!(!ValueMatch::Present(false).holds(vals(&["1"])));

        let range = ValueMatch::Range(1000, 1999);
        assert!(range.holds(vals(&["1000"])));
        assert!(range.holds(vals(&["1999"])));
        assert!(range.holds(vals(&["x", "1500"])), "any value");
        assert!(!range.holds(vals(&["999", "2000"])));
        assert!(!range.holds(vals(&["1500.0", "15e2", "abc", "99999999999999999999"])));
        assert!(!range.holds(vals(&[])));

        let not = ValueMatch::NoneOf(list(&["off", "0"]));
        assert!(not.holds(vals(&[])), "absent holds");
        assert!(not.holds(vals(&["on"])));
        assert!(!not.holds(vals(&["on", "0"])), "no value may be denied");
    }

    #[test]
    fn paths() {
        assert!(PathMatch::Prefix("/api".into()).matches("/api/v1"));
        assert!(PathMatch::Exact("/api/v1".into()).matches("/api/v1"));
        assert!(!PathMatch::Exact("/api/v1".into()).matches("/api/v1/"));
        let re = PathMatch::Regex {
            re: Regex::new("^/api/v[0-9]+/").expect("re"),
            prefix: Some("/api/v".into()),
        };
        assert!(re.matches("/api/v12/cart"));
        assert!(!re.matches("/api/vx/cart"));
        assert_eq!(re.index_prefix(), Some("/api/v"));
    }

    #[test]
    fn networks_v4_and_v6() {
        let n = Networks(vec![
            "10.0.0.0/8".parse().expect("net"),
            "2001:db8::/32".parse().expect("net"),
        ]);
        assert!(n.contains("10.1.2.3".parse().ok()));
        assert!(n.contains("::ffff:10.1.2.3".parse().ok()), "v4-mapped");
        assert!(n.contains("2001:db8:1::7".parse().ok()));
        assert!(!n.contains("2001:db9::1".parse().ok()));
        assert!(!n.contains("11.0.0.1".parse().ok()));
        assert!(!n.contains(None));
    }
}
