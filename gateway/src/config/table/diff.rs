//! Semantic diff of two routes files: what a reload changes, in the words an operator uses
//! (`shop: split shop-stable 95% -> 80%, shop-canary 5% -> 20%`), not a text diff.

use super::mirror::MirrorConfig;
use super::model::{DyeConfig, MatchConfig, RouteConfig, RoutesConfig, UpstreamConfig};
use foldhash::{HashMap, HashSet};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The changes between two routes files.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    pub routes_added: Vec<String>,
    pub routes_removed: Vec<String>,
    pub routes_changed: Vec<String>,
    pub upstreams_added: Vec<String>,
    pub upstreams_removed: Vec<String>,
    pub upstreams_changed: Vec<String>,
    /// One line per change, for logs and `dyegate diff`.
    pub lines: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// `routes +1 -0 ~2, upstreams +0 -0 ~1`.
    pub fn summary(&self) -> String {
        format!(
            "routes +{} -{} ~{}, upstreams +{} -{} ~{}",
            self.routes_added.len(),
            self.routes_removed.len(),
            self.routes_changed.len(),
            self.upstreams_added.len(),
            self.upstreams_removed.len(),
            self.upstreams_changed.len()
        )
    }
}

fn routes(cfg: &RoutesConfig) -> Vec<&RouteConfig> {
    cfg.routes.iter().flatten().map(|r| &**r).collect()
}

fn upstreams(cfg: &RoutesConfig) -> Vec<(&str, &UpstreamConfig)> {
    cfg.upstreams
        .iter()
        .filter_map(|(n, u)| Some((n.as_str(), &**u.as_ref()?)))
        .collect()
}

/// Compares two routes files: the routes (added, changed, removed, reordered), then the
/// upstream groups (added, their targets and transport changed, removed).
pub fn diff(old: &RoutesConfig, new: &RoutesConfig) -> Diff {
    let mut d = Diff::default();
    diff_routes(&routes(old), &routes(new), &mut d);
    diff_upstreams(&upstreams(old), &upstreams(new), &mut d);
    d
}

fn diff_routes(old_routes: &[&RouteConfig], new_routes: &[&RouteConfig], d: &mut Diff) {
    let old_names: Vec<&str> = old_routes.iter().map(|r| r.name.as_str()).collect();
    let new_names: Vec<&str> = new_routes.iter().map(|r| r.name.as_str()).collect();
    // Indexed by name: tables of 10,000 routes must diff in milliseconds, not a quadratic scan.
    let old_by_name: HashMap<&str, &RouteConfig> =
        old_routes.iter().map(|r| (r.name.as_str(), *r)).collect();
    let old_set: HashSet<&str> = old_names.iter().copied().collect();
    let new_set: HashSet<&str> = new_names.iter().copied().collect();

    for r in new_routes {
        match old_by_name.get(r.name.as_str()) {
            None => {
                d.routes_added.push(r.name.clone());
                d.lines.push(format!("route added: {}", r.name));
            }
            // An entry carried over unchanged from the old version is the same value.
            Some(o) if std::ptr::eq(*o, *r) => {}
            Some(o) => {
                let changes = route_changes(o, r);
                if !changes.is_empty() {
                    d.routes_changed.push(r.name.clone());
                    d.lines
                        .extend(changes.into_iter().map(|c| format!("{}: {c}", r.name)));
                }
            }
        }
    }
    for o in old_routes {
        if !new_set.contains(o.name.as_str()) {
            d.routes_removed.push(o.name.clone());
            d.lines.push(format!("route removed: {}", o.name));
        }
    }
    // Order matters for first-match: report a reordering of the routes both files have.
    let common_old: Vec<&str> = old_names
        .iter()
        .copied()
        .filter(|n| new_set.contains(n))
        .collect();
    let common_new: Vec<&str> = new_names
        .iter()
        .copied()
        .filter(|n| old_set.contains(n))
        .collect();
    if common_old != common_new {
        let show = |names: &[&str]| {
            if names.len() > 20 {
                format!("{}, ... ({} routes)", names[..20].join(", "), names.len())
            } else {
                names.join(", ")
            }
        };
        d.lines.push(format!(
            "route order: {} -> {}",
            show(&common_old),
            show(&common_new)
        ));
    }
}

fn diff_upstreams(
    old_ups: &[(&str, &UpstreamConfig)],
    new_ups: &[(&str, &UpstreamConfig)],
    d: &mut Diff,
) {
    let old_ups_by_name: HashMap<&str, &UpstreamConfig> = old_ups.iter().copied().collect();
    let new_up_names: HashSet<&str> = new_ups.iter().map(|(n, _)| *n).collect();
    for (name, u) in new_ups {
        match old_ups_by_name.get(name).map(|o| (*name, *o)) {
            None => {
                d.upstreams_added.push(name.to_string());
                d.lines.push(format!(
                    "upstream added: {name} [{}]",
                    targets(u).into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
            Some((_, o)) if std::ptr::eq(o, *u) => {}
            Some((_, o)) => {
                let (before, after) = (targets(o), targets(u));
                let added: Vec<&String> = after.difference(&before).collect();
                let removed: Vec<&String> = before.difference(&after).collect();
                let transport = transport_changes(o, u);
                if !added.is_empty() || !removed.is_empty() || !transport.is_empty() {
                    d.upstreams_changed.push(name.to_string());
                }
                for t in added {
                    d.lines.push(format!("upstream {name}: target added {t}"));
                }
                for t in removed {
                    d.lines.push(format!("upstream {name}: target removed {t}"));
                }
                for c in transport {
                    d.lines.push(format!("upstream {name}: {c}"));
                }
            }
        }
    }
    for (name, _) in old_ups {
        if !new_up_names.contains(name) {
            d.upstreams_removed.push(name.to_string());
            d.lines.push(format!("upstream removed: {name}"));
        }
    }
}

/// Targets as `addr` or `addr (weight N)`.
fn targets(u: &UpstreamConfig) -> BTreeSet<String> {
    u.targets
        .iter()
        .map(|t| {
            if t.weight.0 == 1 {
                t.addr.trim().to_string()
            } else {
                format!("{} (weight {})", t.addr.trim(), t.weight.0)
            }
        })
        .collect()
}

/// `protocol` and `tls` of a group: `protocol h1 -> h2c`, `tls.ca (none) -> certs/ca.pem`.
fn transport_changes(o: &UpstreamConfig, n: &UpstreamConfig) -> Vec<String> {
    let mut out = Vec::new();
    if o.protocol != n.protocol {
        out.push(format!(
            "protocol {} -> {}",
            o.protocol.as_str(),
            n.protocol.as_str()
        ));
    }
    match (&o.tls, &n.tls) {
        (None, None) => {}
        (None, Some(_)) => out.push("tls added".into()),
        (Some(_), None) => out.push("tls removed".into()),
        (Some(a), Some(b)) => {
            if a.sni != b.sni {
                out.push(format!("tls.sni {} -> {}", opt(&a.sni), opt(&b.sni)));
            }
            if a.verify != b.verify {
                out.push(format!("tls.verify {} -> {}", a.verify, b.verify));
            }
            if a.ca != b.ca {
                out.push(format!("tls.ca {} -> {}", opt(&a.ca), opt(&b.ca)));
            }
        }
    }
    out
}

/// A route's changes: split, rollout, redirect and stickiness, then `dye`, then `match`.
fn route_changes(o: &RouteConfig, n: &RouteConfig) -> Vec<String> {
    let mut out = Vec::new();
    // Split: each group's share, with the weights as written (see diff_split.rs).
    let rollout = o.rollout.is_some() || n.rollout.is_some();
    out.extend(super::diff_split::split_change(&o.split, &n.split, rollout));
    if o.rollout != n.rollout {
        out.push("rollout changed".into());
    }
    if o.https_redirect != n.https_redirect {
        out.push(format!(
            "https_redirect {} -> {}",
            o.https_redirect, n.https_redirect
        ));
    }
    mirror_changes(&o.mirror, &n.mirror, &mut out);
    if o.sticky != n.sticky {
        out.push(format!("sticky {} -> {}", opt(&o.sticky), opt(&n.sticky)));
    }
    dye_changes(&o.dye, &n.dye, &mut out);
    match_changes(&o.matches, &n.matches, &mut out);
    out
}

/// `mirror`: entries added and removed (by group), the share and the rest of each.
fn mirror_changes(o: &[MirrorConfig], n: &[MirrorConfig], out: &mut Vec<String>) {
    for m in n {
        match o.iter().find(|x| x.upstream == m.upstream) {
            None => out.push(format!("mirror added -> {} {}%", m.upstream, m.percent)),
            Some(x) if x.percent != m.percent => out.push(format!(
                "mirror {} {}% -> {}%",
                m.upstream, x.percent, m.percent
            )),
            Some(x) if x != m => out.push(format!("mirror {} changed", m.upstream)),
            Some(_) => {}
        }
    }
    for m in o
        .iter()
        .filter(|x| !n.iter().any(|m| m.upstream == x.upstream))
    {
        out.push(format!("mirror removed -> {}", m.upstream));
    }
}

/// `dye`: tags added, moved and removed, the header, the policies, the trusted sources.
fn dye_changes(o: &DyeConfig, n: &DyeConfig, out: &mut Vec<String>) {
    for (tag, group) in &n.tags.0 {
        match o.tags.0.iter().find(|(t, _)| t == tag) {
            None => out.push(format!("tag added {tag} -> {group}")),
            Some((_, g)) if g != group => out.push(format!("tag {tag}: {g} -> {group}")),
            Some(_) => {}
        }
    }
    for (tag, group) in &o.tags.0 {
        if !n.tags.0.iter().any(|(t, _)| t == tag) {
            out.push(format!("tag removed {tag} (was -> {group})"));
        }
    }
    if o.header != n.header {
        out.push(format!("dye.header {} -> {}", o.header, n.header));
    }
    if o.from != n.from {
        let from = |f: &Option<Vec<String>>| list(Some(f.as_deref().unwrap_or(&["header".into()])));
        out.push(format!("dye.from {} -> {}", from(&o.from), from(&n.from)));
    }
    if o.on_unknown_tag != n.on_unknown_tag {
        out.push(format!(
            "on_unknown_tag {:?} -> {:?}",
            o.on_unknown_tag, n.on_unknown_tag
        ));
    }
    if o.trusted_sources != n.trusted_sources {
        out.push(format!(
            "trusted_sources {} -> {}",
            list(o.trusted_sources.as_deref()),
            list(n.trusted_sources.as_deref())
        ));
    }
}

/// `match`: host, path, methods, headers, query, cookies, client networks.
fn match_changes(om: &MatchConfig, nm: &MatchConfig, out: &mut Vec<String>) {
    if om.host != nm.host {
        out.push(format!("match.host {} -> {}", opt(&om.host), opt(&nm.host)));
    }
    if om.path_prefix != nm.path_prefix {
        out.push(format!(
            "match.path_prefix {} -> {}",
            opt(&om.path_prefix),
            opt(&nm.path_prefix)
        ));
    }
    if om.path != nm.path {
        let show = |p: &Option<super::model::PathConfig>| match p {
            None => "(none)".to_string(),
            Some(p) => {
                let (k, v) = match (&p.prefix, &p.exact, &p.regex) {
                    (Some(v), ..) => ("prefix", v),
                    (_, Some(v), _) => ("exact", v),
                    (.., Some(v)) => ("regex", v),
                    _ => return "{}".to_string(),
                };
                format!("{{{k}: {v:?}}}")
            }
        };
        out.push(format!(
            "match.path {} -> {}",
            show(&om.path),
            show(&nm.path)
        ));
    }
    if om.methods != nm.methods {
        out.push(format!(
            "match.methods {} -> {}",
            list(om.methods.as_deref()),
            list(nm.methods.as_deref())
        ));
    }
    for (field, o, n) in [
        ("headers", &om.headers, &nm.headers),
        ("query", &om.query, &nm.query),
        ("cookies", &om.cookies, &nm.cookies),
    ] {
        if o != n {
            out.push(format!(
                "match.{field} {} -> {}",
                conditions(o),
                conditions(n)
            ));
        }
    }
    if om.client_ip != nm.client_ip {
        out.push(format!(
            "match.client_ip {} -> {}",
            list(om.client_ip.as_deref()),
            list(nm.client_ip.as_deref())
        ));
    }
}

/// `{x-client: [web], x-region: {regex: "^eu-"}}`.
fn conditions(entries: &crate::config::entries::Entries<super::model::ValueConfig>) -> String {
    let mut s = String::new();
    for (i, (k, v)) in entries.0.iter().enumerate() {
        let _ = write!(s, "{}{k}: {v}", if i > 0 { ", " } else { "" });
    }
    format!("{{{s}}}")
}

fn opt(v: &Option<String>) -> String {
    v.as_deref().unwrap_or("(none)").to_string()
}

fn list(v: Option<&[String]>) -> String {
    v.map_or_else(|| "(none)".into(), |l| format!("[{}]", l.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::routes_from_text;

    fn model(text: &str) -> RoutesConfig {
        routes_from_text("r.yaml", text.as_bytes().to_vec(), None)
            .unwrap_or_else(|e| panic!("{e}"))
            .model
            .as_ref()
            .clone()
    }

    #[test]
    fn weight_tag_match_route_and_target_changes() {
        let old = model(
            "upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\n  c: { targets: [\"127.0.0.1:2\"] }\nroutes:\n  - { name: shop, match: { host: a.com }, dye: { tags: { canary: c } }, split: [{ upstream: s, weight: 95 }, { upstream: c, weight: 5 }] }\n  - { name: old, split: [{ upstream: s, weight: 1 }] }\n",
        );
        let new = model(
            "upstreams:\n  s: { targets: [\"127.0.0.1:1\", \"127.0.0.1:3\"] }\n  c: { targets: [\"127.0.0.1:2\"] }\nroutes:\n  - { name: shop, match: { host: b.com }, dye: { tags: { canary: c, beta: c } }, split: [{ upstream: s, weight: 80 }, { upstream: c, weight: 20 }] }\n  - { name: new, split: [{ upstream: s, weight: 1 }] }\n",
        );
        let d = diff(&old, &new);
        assert_eq!(
            d.lines,
            vec![
                "shop: split s 95% -> 80%, c 5% -> 20%",
                "shop: tag added beta -> c",
                "shop: match.host a.com -> b.com",
                "route added: new",
                "route removed: old",
                "upstream s: target added 127.0.0.1:3",
            ]
        );
        assert_eq!(d.summary(), "routes +1 -1 ~1, upstreams +0 -0 ~1");
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn the_richer_match_forms_and_tag_sources() {
        let ups = "upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\nroutes:\n";
        let old = model(&format!(
            "{ups}  - {{ name: r, match: {{ path_prefix: /api, headers: {{ x-client: [web] }} }}, split: [{{ upstream: s, weight: 1 }}] }}\n"
        ));
        let new = model(&format!(
            "{ups}  - {{ name: r, match: {{ path: {{ regex: \"^/api/v[0-9]+\" }}, headers: {{ x-client: [web], x-user-id: {{ range: [1000, 1999] }} }}, query: {{ env: [canary] }}, cookies: {{ plan: {{ regex: \"^pro\" }} }}, client_ip: [10.0.0.0/8] }}, dye: {{ from: [header, \"cookie:env_tag\"] }}, split: [{{ upstream: s, weight: 1 }}] }}\n"
        ));
        assert_eq!(
            diff(&old, &new).lines,
            vec![
                "r: dye.from [header] -> [header, cookie:env_tag]",
                "r: match.path_prefix /api -> (none)",
                "r: match.path (none) -> {regex: \"^/api/v[0-9]+\"}",
                "r: match.headers {x-client: [web]} -> {x-client: [web], x-user-id: {range: [1000, 1999]}}",
                "r: match.query {} -> {env: [canary]}",
                "r: match.cookies {} -> {plan: {regex: \"^pro\"}}",
                "r: match.client_ip (none) -> [10.0.0.0/8]",
            ]
        );
    }

    #[test]
    fn mirror_changes() {
        let ups = "upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\n  c: { targets: [\"127.0.0.1:2\"] }\n  b: { targets: [\"127.0.0.1:3\"] }\nroutes:\n";
        let old = model(&format!(
            "{ups}  - {{ name: r, split: [{{ upstream: s, weight: 1 }}], mirror: [{{ upstream: c, percent: 10 }}, {{ upstream: b, percent: 1 }}] }}\n"
        ));
        let new = model(&format!(
            "{ups}  - {{ name: r, split: [{{ upstream: s, weight: 1 }}], mirror: [{{ upstream: c, percent: 0.5 }}, {{ upstream: s, percent: 100 }}] }}\n"
        ));
        assert_eq!(
            diff(&old, &new).lines,
            vec![
                "r: mirror c 10% -> 0.5%",
                "r: mirror added -> s 100%",
                "r: mirror removed -> b",
            ]
        );
        let timeout = model(&format!(
            "{ups}  - {{ name: r, split: [{{ upstream: s, weight: 1 }}], mirror: [{{ upstream: c, percent: 10, timeout_ms: 50 }}, {{ upstream: b, percent: 1 }}] }}\n"
        ));
        assert_eq!(diff(&old, &timeout).lines, vec!["r: mirror c changed"]);
    }

    #[test]
    fn protocol_and_tls_changes() {
        let route = "routes:\n  - { name: r, split: [{ upstream: g, weight: 1 }] }\n";
        let old = model(&format!(
            "upstreams:\n  g: {{ targets: [\"127.0.0.1:1\"] }}\n  t: {{ targets: [\"127.0.0.1:2\"], tls: {{ sni: a.internal }} }}\n{route}"
        ));
        let new = model(&format!(
            "upstreams:\n  g: {{ targets: [\"127.0.0.1:1\"], protocol: h2c }}\n  t: {{ targets: [\"127.0.0.1:2\"], protocol: h2, tls: {{ sni: b.internal, verify: false }} }}\n{route}"
        ));
        let d = diff(&old, &new);
        assert_eq!(
            d.lines,
            vec![
                "upstream g: protocol h1 -> h2c",
                "upstream t: protocol h1 -> h2",
                "upstream t: tls.sni a.internal -> b.internal",
                "upstream t: tls.verify true -> false",
            ]
        );
        assert_eq!(d.upstreams_changed, vec!["g", "t"]);
    }
}
