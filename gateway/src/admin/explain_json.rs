//! `POST /explain` and `dyegate explain --file`: a request described in JSON is decided on a
//! table with the decision's own code (`RouteTable::explain_with`), nothing sent, and the
//! answer said in JSON: the route and why (per route tried, the condition that failed), the
//! tag and where it came from, the group, or for a split the groups with their shares.

use crate::routing::{
    normalize_host, Addresses, Cond, Outcome, Parsed, Preview, RequestInfo, RouteTable,
    TargetHealth, Tried,
};
use dyegate_plugins::TagSource;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// The request to explain (`POST /explain`'s body).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// `http://HOST[:PORT]/PATH?QUERY`, or `/PATH?QUERY` with a `host` header.
    pub url: String,
    /// [GET]
    #[serde(default)]
    pub method: Option<String>,
    /// `[NAME, VALUE]` pairs, in order (a name may repeat).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// `[NAME, VALUE]` pairs, sent as one `Cookie` header after any given in `headers`.
    #[serde(default)]
    pub cookies: Vec<(String, String)>,
    /// `[NAME, VALUE]` pairs appended to the URL's query, percent-encoded.
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// The client address (as the proxy finds it: PROXY source, peer, or forwarded).
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

/// The parts of the request the decision reads.
struct Parts {
    method: Method,
    host: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

fn parts(r: &ExplainRequest) -> Result<Parts, String> {
    let method = r
        .method
        .as_deref()
        .unwrap_or("GET")
        .trim()
        .to_ascii_uppercase();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("method: found {:?}, expected an HTTP method", r.method))?;
    let uri: Uri = (r.url.parse()).map_err(|e| {
        format!(
            "url: found {:?}, expected http://HOST/PATH or /PATH ({e})",
            r.url
        )
    })?;
    let mut headers = HeaderMap::new();
    for (k, v) in &r.headers {
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| format!("headers: found {k:?}, expected a header name"))?;
        let value = HeaderValue::from_str(v.trim())
            .map_err(|_| format!("headers: {k}: found {v:?}, expected a header value"))?;
        headers.append(name, value);
    }
    if !r.cookies.is_empty() {
        let line: Vec<String> = r.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let value = HeaderValue::from_str(&line.join("; "))
            .map_err(|_| format!("cookies: found {line:?}, expected cookie pairs"))?;
        headers.append(http::header::COOKIE, value);
    }
    let host = match uri.authority() {
        Some(a) => a.as_str().to_string(),
        None => (headers.get(http::header::HOST))
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "url: found {:?} without a host, expected http://HOST/PATH or a host header",
                    r.url
                )
            })?,
    };
    let mut query = uri.query().map(str::to_string);
    for (k, v) in &r.query {
        let pair = format!("{}={}", encode(k), encode(v));
        query = Some(match query {
            Some(q) if !q.is_empty() => format!("{q}&{pair}"),
            _ => pair,
        });
    }
    Ok(Parts {
        method,
        host: normalize_host(&host).into_owned(),
        path: uri.path().to_string(),
        query,
        headers,
    })
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Explains `r` on `table` (the running one with its health view, or a file's with every
/// target healthy). An error names what in the request is malformed.
pub fn explain_json(
    table: &RouteTable,
    version: Option<u64>,
    r: &ExplainRequest,
    health: &impl TargetHealth,
    addresses: &Arc<Addresses>,
) -> Result<Value, String> {
    let p = parts(r)?;
    let parsed = Parsed::default();
    let info = RequestInfo {
        method: &p.method,
        host: &p.host,
        path: &p.path,
        query: p.query.as_deref(),
        headers: &p.headers,
        client: r.ip,
        parsed: &parsed,
    };
    let e = table.explain_with(&info, health, addresses);
    let route_name = |id: usize| table.route(id).map(|r| r.name.to_string());
    let group_name = |id: usize| table.group(id).map(|g| g.name.to_string());
    let (outcome, route, reason, group, tag) = match e.preview {
        Preview::Decided(Outcome::NoRoute) => ("no_route", None, "no_route", None, None),
        Preview::Decided(Outcome::RejectedTag { route_id }) => {
            ("rejected", Some(route_id), "rejected", None, None)
        }
        Preview::Decided(Outcome::NoHealthyTarget {
            route_id,
            group,
            tag,
        }) => (
            "no_healthy_target",
            Some(route_id),
            "no_healthy_target",
            Some(group),
            tag,
        ),
        Preview::Decided(Outcome::Routed(d)) => (
            "routed",
            Some(d.route_id),
            d.reason.as_str(),
            Some(d.group),
            d.tag,
        ),
        Preview::Split {
            route_id,
            reason,
            tag,
        } => ("split", Some(route_id), reason.as_str(), None, tag),
    };
    let (tried, other_hosts) = tried(table, &e.tried);
    let split = route.and_then(|id| table.route(id)).map(|r| {
        let total: u64 = r.split.weights.iter().map(|w| u64::from(*w)).sum();
        (r.split.groups.iter().zip(&r.split.weights))
            .map(|(g, w)| {
                let share = if total == 0 {
                    0.0
                } else {
                    f64::from(*w) / total as f64
                };
                json!({ "group": group_name(*g), "weight": w, "share": share })
            })
            .collect::<Vec<_>>()
    });
    Ok(json!({
        "version": version,
        "request": {
            "method": p.method.as_str(),
            "host": p.host,
            "path": p.path,
            "query": p.query,
            "client": r.ip.map(|ip| ip.to_string()),
        },
        "outcome": outcome,
        "route": route.and_then(route_name),
        "reason": reason,
        "group": group.and_then(group_name),
        "tag": tag,
        "tag_from": e.tag_from.map(|f| f.label()),
        "tag_status": match e.tag_source {
            TagSource::Absent => "absent",
            TagSource::Given => "given",
            TagSource::Untrusted => "untrusted",
            TagSource::Malformed => "malformed",
        },
        "match": e.matched(table),
        "miss": e.miss(table),
        "tried": tried,
        "other_hosts": other_hosts,
        "split": split,
    }))
}

/// The routes tried before the decision, each with the condition that failed (or every
/// condition, for the one that matched), and how many were for other hosts: those are counted,
/// not listed (a table of 10,000 routes would bury the few that matter).
fn tried(table: &RouteTable, tried: &[Tried]) -> (Vec<Value>, usize) {
    let mut other_hosts = 0;
    let mut out = Vec::new();
    for t in tried {
        let Some(r) = table.route(t.route) else {
            continue;
        };
        match t.failed {
            Some(Cond::Host) => other_hosts += 1,
            Some(c) => out.push(
                json!({ "route": r.name.as_ref(), "index": t.route, "failed": r.matcher.name(c) }),
            ),
            None => {
                let conds: Vec<String> = r
                    .matcher
                    .conditions()
                    .iter()
                    .map(|c| r.matcher.name(*c))
                    .collect();
                out.push(json!({ "route": r.name.as_ref(), "index": t.route, "matched": conds }))
            }
        }
    }
    (out, other_hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::AllHealthy;

    #[test]
    fn a_request_in_json_is_explained() {
        let t = crate::config::routes_from_text(
            "r.yaml",
            b"upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\n  c: { targets: [\"127.0.0.1:2\"] }\nroutes:\n  - { name: other, match: { host: b.com }, split: [{ upstream: s, weight: 1 }] }\n  - { name: gray, match: { host: a.com, cookies: { plan: [pro] } }, split: [{ upstream: c, weight: 1 }] }\n  - { name: shop, match: { host: a.com }, dye: { from: [\"query:env\"], tags: { canary: c } }, split: [{ upstream: s, weight: 3 }, { upstream: c, weight: 1 }] }\n".to_vec(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .table;
        let r = ExplainRequest {
            url: "http://A.com:8080/x?a=1".into(),
            cookies: vec![("plan".into(), "free".into())],
            query: vec![("env".into(), "canary".into())],
            ..Default::default()
        };
        let j = explain_json(&t, Some(4), &r, &AllHealthy, Addresses::none()).expect("explained");
        assert_eq!(j["route"], "shop");
        assert_eq!(j["reason"], "tag");
        assert_eq!(j["group"], "c");
        assert_eq!(j["tag"], "canary");
        assert_eq!(j["tag_from"], "query:env");
        assert_eq!(j["match"], "host");
        assert_eq!(j["miss"], "gray:cookies.plan");
        assert_eq!(j["other_hosts"], 1);
        assert_eq!(j["request"]["query"], "a=1&env=canary");
        assert_eq!(
            j["tried"],
            json!([
                { "route": "gray", "index": 1, "failed": "cookies.plan" },
                { "route": "shop", "index": 2, "matched": ["host"] },
            ])
        );
        assert_eq!(
            j["split"][0],
            json!({ "group": "s", "weight": 3, "share": 0.75 })
        );

        let r = ExplainRequest {
            url: "http://a.com/".into(),
            ..Default::default()
        };
        let j = explain_json(&t, None, &r, &AllHealthy, Addresses::none()).expect("explained");
        assert_eq!(
            (j["outcome"].as_str(), j["reason"].as_str()),
            (Some("split"), Some("split"))
        );
        assert_eq!(j["group"], Value::Null, "the next pick is not known");

        let bad = ExplainRequest {
            url: "/x".into(),
            ..Default::default()
        };
        assert_eq!(
            explain_json(&t, None, &bad, &AllHealthy, Addresses::none()),
            Err(
                "url: found \"/x\" without a host, expected http://HOST/PATH or a host header"
                    .into()
            )
        );
    }
}
