//! Routes no request can reach: routes are tried in file order and the first whose `match` holds
//! wins, so a route whose every request an earlier route also matches (a catch-all above it, a
//! shorter path prefix on the same host, ...) is never chosen. Found by comparing matchers, never
//! by guessing: an earlier route shadows a later one only when each of its conditions is implied
//! by the later route's (see [`Matcher::covers`]). Pure; `dyegate check` prints what it finds.

use super::conditions::{PathMatch, ValueMatch};
use super::route::{HostMatch, Matcher, Route};
use std::collections::HashMap;
use std::sync::Arc;

/// An unreachable route: `route` (index) is shadowed by the earlier `by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shadowed {
    pub route: usize,
    pub by: usize,
}

/// Every route that an earlier route shadows, with the first one that does. Only routes
/// without a path prefix, or whose prefix starts the later route's, can shadow it: those are
/// looked up by prefix, so a table of 10,000 routes is not 50 million comparisons.
pub fn shadowed(routes: &[Arc<Route>]) -> Vec<Shadowed> {
    let mut by_prefix: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut no_prefix = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        match r.matcher.path.as_ref().and_then(|p| p.index_prefix()) {
            Some(p) => by_prefix.entry(p).or_default().push(i),
            None => no_prefix.push(i),
        }
    }
    let mut out = Vec::new();
    for (i, later) in routes.iter().enumerate() {
        let path = later.matcher.path.as_ref().and_then(|p| p.index_prefix());
        let prefixes = path.into_iter().flat_map(|p| {
            (0..=p.len())
                .filter(|k| p.is_char_boundary(*k))
                .filter_map(|k| by_prefix.get(&p[..k]))
        });
        let by = (no_prefix.iter().chain(prefixes.flatten()))
            .copied()
            .filter(|j| *j < i && routes[*j].matcher.covers(&later.matcher))
            .min();
        if let Some(by) = by {
            out.push(Shadowed { route: i, by });
        }
    }
    out
}

impl Matcher {
    /// Whether every request `other` matches is also matched by `self`: each condition of
    /// `self` is absent or implied by `other`'s. Conservative: `false` when it cannot tell.
    pub fn covers(&self, other: &Matcher) -> bool {
        // Destructured whole: a new kind of condition must say here how it is implied.
        let Matcher {
            host,
            path,
            methods,
            headers,
            query,
            cookies,
            client_ip,
        } = self;
        let host_ok = match (host, &other.host) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => host_covers(a, b),
        };
        let path_ok = match (path, &other.path) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => path_covers(a, b),
        };
        let methods_ok = match (methods, &other.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b.iter().all(|m| a.contains(m)),
        };
        let ips_ok = match (client_ip, &other.client_ip) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a.covers(b),
        };
        host_ok
            && path_ok
            && methods_ok
            && ips_ok
            && keyed_cover(headers, &other.headers)
            && keyed_cover(query, &other.query)
            && keyed_cover(cookies, &other.cookies)
    }
}

/// Each condition of `ours` is implied by one of `theirs` on the same name.
fn keyed_cover<K: PartialEq>(ours: &[(K, ValueMatch)], theirs: &[(K, ValueMatch)]) -> bool {
    ours.iter().all(|(name, test)| {
        (theirs.iter())
            .filter(|(n, _)| n == name)
            .any(|(_, t)| test.covers(t))
    })
}

/// Whether every path `b` matches, `a` matches.
fn path_covers(a: &PathMatch, b: &PathMatch) -> bool {
    match (a, b) {
        (PathMatch::Prefix(x), PathMatch::Prefix(y) | PathMatch::Exact(y)) => {
            y.starts_with(x.as_str())
        }
        (PathMatch::Exact(x), PathMatch::Exact(y)) => x == y,
        (PathMatch::Regex { .. }, PathMatch::Regex { .. }) => a == b,
        _ => false,
    }
}

/// Whether every host `b` matches, `a` matches.
fn host_covers(a: &HostMatch, b: &HostMatch) -> bool {
    match (a, b) {
        (HostMatch::Exact(x), HostMatch::Exact(y)) => x == y,
        (HostMatch::Exact(_), HostMatch::Suffix(_)) => false,
        (HostMatch::Suffix(_), HostMatch::Exact(y)) => a.matches(y),
        // `.b.example.com` hosts all end with `.example.com`.
        (HostMatch::Suffix(x), HostMatch::Suffix(y)) => y.ends_with(x.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::routes_from_text;

    fn found(routes: &str) -> Vec<(String, String)> {
        let text = format!("upstreams:\n  u: {{ targets: [\"127.0.0.1:1\"] }}\nroutes:\n{routes}");
        let loaded =
            routes_from_text("t", text.into_bytes(), None).unwrap_or_else(|e| panic!("{e}"));
        let routes = loaded.table.routes();
        shadowed(routes)
            .into_iter()
            .map(|s| {
                (
                    routes[s.route].name.to_string(),
                    routes[s.by].name.to_string(),
                )
            })
            .collect()
    }

    fn route(name: &str, matches: &str) -> String {
        format!("  - {{ name: {name}, match: {{ {matches} }}, split: [{{ upstream: u, weight: 1 }}] }}\n")
    }

    #[test]
    fn a_route_below_one_that_matches_all_it_would_is_found() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        // A catch-all shadows everything below it.
        let t = route("all", "")
            + &route("api", "path_prefix: /api")
            + &route("h", "host: a.example.com");
        assert_eq!(found(&t), pairs(&[("api", "all"), ("h", "all")]));
        // A shorter prefix; a wildcard host over an exact one and a deeper wildcard.
        let t = route("api", "path_prefix: /api")
            + &route("v2", "path_prefix: /api/v2, methods: [GET]")
            + &route("wild", "host: \"*.example.com\"")
            + &route("exact", "host: shop.example.com, path_prefix: /x")
            + &route("deeper", "host: \"*.eu.example.com\"");
        assert_eq!(
            found(&t),
            pairs(&[("v2", "api"), ("exact", "wild"), ("deeper", "wild")])
        );
        // Methods and headers: a superset above shadows.
        let t = route(
            "any-method",
            "methods: [GET, POST], headers: { x-a: [\"1\", \"2\"] }",
        ) + &route("get", "methods: [GET], headers: { x-a: \"1\", x-b: \"3\" }");
        assert_eq!(found(&t), pairs(&[("get", "any-method")]));
    }

    #[test]
    fn the_richer_forms_shadow_only_when_implied() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let t = route("api", "path: { prefix: /api }")
            + &route("exact", "path: { exact: /api/v1 }")
            + &route("wide", "headers: { x-u: { range: [0, 100] } }")
            + &route("narrow", "headers: { x-u: { range: [10, 20] } }")
            + &route("present", "cookies: { plan: { present: true } }")
            + &route("pro", "cookies: { plan: [pro] }")
            + &route("nets", "client_ip: [10.0.0.0/8]")
            + &route("net", "client_ip: [10.1.0.0/16], query: { env: [a] }");
        assert_eq!(
            found(&t),
            pairs(&[
                ("exact", "api"),
                ("narrow", "wide"),
                ("pro", "present"),
                ("net", "nets")
            ])
        );
        // Regexes, `not` and absence are never assumed to cover something else.
        let t = route("re", "path: { regex: \"^/a\" }")
            + &route("a", "path: { prefix: /a }")
            + &route("not", "headers: { x-b: { not: [\"0\"] } }")
            + &route("b", "headers: { x-b: [\"1\"] }")
            + &route("absent", "query: { d: { present: false } }")
            + &route("any", "");
        assert_eq!(found(&t), pairs(&[]));
    }

    #[test]
    fn a_route_that_can_still_be_reached_is_not_reported() {
        let t = route("api", "path_prefix: /api/v2")
            + &route("v1", "path_prefix: /api")
            + &route("exact", "host: shop.example.com")
            + &route("wild", "host: \"*.example.com\"")
            + &route("apex", "host: example.com")
            + &route("get", "methods: [GET]")
            + &route("getpost", "methods: [GET, POST]")
            + &route("hdr", "headers: { x-a: \"1\" }")
            + &route("hdr2", "headers: { x-a: [\"1\", \"2\"] }")
            + &route("all", "");
        assert_eq!(found(&t), Vec::<(String, String)>::new());
    }
}
