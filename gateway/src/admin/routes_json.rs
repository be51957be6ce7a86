//! The compiled table as JSON for `GET /routes`: what the gateway really runs, after defaults and
//! normalisation (lower-cased hosts, upper-cased methods).

use crate::routing::{HostMatch, RouteTable, StickyKey, TargetEntry};
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
            let headers: Map<String, Value> = m
                .headers
                .iter()
                .map(|(n, vals)| {
                    let vals: Vec<Value> = vals
                        .iter()
                        .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
                        .collect();
                    (n.as_str().to_string(), Value::Array(vals))
                })
                .collect();
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
                    "path_prefix": m.path_prefix,
                    "methods": m.methods.as_ref().map(|ms| ms.iter().map(|x| x.as_str().to_string()).collect::<Vec<_>>()),
                    "headers": headers,
                },
                "dye": {
                    "header": r.dye.header.as_str(),
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
