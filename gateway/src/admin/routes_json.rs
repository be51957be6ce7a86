//! The compiled table as JSON for `GET /routes`: what the gateway really runs, after defaults and
//! normalisation (lower-cased hosts, upper-cased methods).

use crate::routing::{HostMatch, PathMatch, RouteTable, StickyKey, TargetEntry, ValueMatch};
use serde_json::{json, Map, Value};

pub fn routes_json(t: &RouteTable) -> Value {
    let group_name = |id: usize| t.group(id).map_or(String::new(), |g| g.name.to_string());
    let routes: Vec<Value> = t
        .routes()
        .iter()
        .map(|r| {
            let m = &r.matcher;
            let host = m.host.as_ref().map(|h| match h {
                HostMatch::Exact(h) => h.clone(),
                HostMatch::Suffix(s) => format!("*{s}"),
            });
            let headers = keyed_json(m.headers.iter().map(|(n, t)| (n.as_str().as_bytes(), t)));
            let tags: Map<String, Value> = r
                .dye
                .tags
                .iter()
                .map(|(tag, g)| (tag.to_string(), Value::String(group_name(*g))))
                .collect();
            let split: Vec<Value> = r
                .split
                .groups
                .iter()
                .zip(&r.split.weights)
                .map(|(g, w)| json!({ "upstream": group_name(*g), "weight": w }))
                .collect();
            let sticky = r.split.sticky.as_ref().map(|(k, _)| match k {
                StickyKey::Header(h) => format!("header:{h}"),
                StickyKey::Cookie(c) => format!("cookie:{c}"),
                StickyKey::ClientIp => "client_ip".to_string(),
            });
            json!({
                "name": r.name.as_ref(),
                "match": {
                    "host": host,
                    // A prefix as `path_prefix` (as before `path` existed), the other forms as `path`.
                    "path_prefix": match &m.path { Some(PathMatch::Prefix(p)) => Some(p.as_str()), _ => None },
                    "path": m.path.as_ref().filter(|p| !matches!(p, PathMatch::Prefix(_))).map(path_json),
                    "methods": m.methods.as_ref().map(|ms| ms.iter().map(|x| x.as_str().to_string()).collect::<Vec<_>>()),
                    "headers": headers,
                    "query": keyed_json(m.query.iter().map(|(n, t)| (&n[..], t))),
                    "cookies": keyed_json(m.cookies.iter().map(|(n, t)| (&n[..], t))),
                    "client_ip": m.client_ip.as_ref().map(|n| n.0.iter().map(ToString::to_string).collect::<Vec<_>>()),
                },
                "dye": {
                    "header": r.dye.header.as_str(),
                    "from": r.dye.from.iter().map(|f| f.label()).collect::<Vec<_>>(),
                    "tags": tags,
                    "on_unknown_tag": format!("{:?}", r.dye.on_unknown_tag).to_lowercase(),
                    "trusted_sources": r.dye.trusted.nets().iter().map(ToString::to_string).collect::<Vec<_>>(),
                },
                "split": split,
                "sticky": sticky,
            })
        })
        .collect();
    let upstreams: Map<String, Value> = t
        .groups()
        .iter()
        .map(|g| {
            // As written: `NAME:PORT` entries stay names (`/upstreams` has their addresses).
            let targets: Vec<Value> = (g.entries().iter())
                .map(|e| match e {
                    TargetEntry::Addr(x) => {
                        json!({ "addr": x.addr.to_string(), "weight": x.weight })
                    }
                    TargetEntry::Name(n) => json!({ "addr": n.to_string(), "weight": n.weight }),
                })
                .collect();
            (g.name.to_string(), json!({ "targets": targets }))
        })
        .collect();
    json!({ "routes": routes, "upstreams": upstreams })
}

/// `{ "prefix": "/api" }`, `{ "exact": ... }` or `{ "regex": ... }`.
fn path_json(p: &PathMatch) -> Value {
    let text = match p {
        PathMatch::Prefix(s) | PathMatch::Exact(s) => s.as_str(),
        PathMatch::Regex { re, .. } => re.as_str(),
    };
    json!({ p.kind(): text })
}

/// A value condition as the file writes it: a list of values, or `{ "regex": ... }`,
/// `{ "present": ... }`, `{ "range": [lo, hi] }`, `{ "not": [...] }`.
pub fn condition_json(t: &ValueMatch) -> Value {
    let text = |v: &[Box<[u8]>]| -> Vec<String> {
        v.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    };
    match t {
        ValueMatch::OneOf(v) => json!(text(v)),
        ValueMatch::Regex(r) => json!({ "regex": r.as_str() }),
        ValueMatch::Present(p) => json!({ "present": p }),
        ValueMatch::Range(lo, hi) => json!({ "range": [lo, hi] }),
        ValueMatch::NoneOf(v) => json!({ "not": text(v) }),
    }
}

fn keyed_json<'a>(entries: impl Iterator<Item = (&'a [u8], &'a ValueMatch)>) -> Map<String, Value> {
    entries
        .map(|(n, t)| (String::from_utf8_lossy(n).into_owned(), condition_json(t)))
        .collect()
}
