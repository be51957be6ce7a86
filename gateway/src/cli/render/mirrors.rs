//! `dyegate mirrors [ROUTE]`: per route and shadow group, the copies by outcome, then the last
//! mismatches (newest first): statuses, body lengths and latencies as `real/shadow`, the
//! names of the differing headers and the trace id.

use super::{duration, table, text};
use serde_json::Value;

pub fn render(m: &Value, now_unix: u64) -> String {
    let list = m["mirrors"].as_array().map_or(&[][..], Vec::as_slice);
    if list.is_empty() {
        return "no mirrored requests (a route with a `mirror:` section sends them)\n".into();
    }
    let mut out = String::new();
    for e in list {
        // In the order the outcomes are listed in (the JSON's object is sorted by name).
        let mut counts: Vec<String> = (crate::mirror::OUTCOMES.iter())
            .map(|o| (o.as_str(), &e["counts"][o.as_str()]))
            .filter(|(_, n)| n.as_u64().is_some_and(|n| n > 0))
            .map(|(o, n)| format!("{} {o}", text(n)))
            .collect();
        if let Some(n) = e["noise"].as_u64().filter(|n| *n > 0) {
            counts.push(format!("{n} noise (matches by the baseline)"));
        }
        let counts = if counts.is_empty() {
            "nothing counted yet".to_string()
        } else {
            counts.join(", ")
        };
        out.push_str(&format!(
            "{} -> {}: {counts}\n",
            text(&e["route"]),
            text(&e["group"])
        ));
        let rows: Vec<Vec<String>> = (e["mismatches"].as_array().into_iter().flatten())
            .map(|x| row(x, now_unix))
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&table(
            &[
                "  WHEN", "OUTCOME", "METHOD", "PATH", "STATUS", "BYTES", "MS", "HEADERS", "TRACE",
            ],
            &rows,
        ));
    }
    out.push_str("(STATUS, BYTES, MS: real answer/shadow's answer)\n");
    out
}

fn row(x: &Value, now_unix: u64) -> Vec<String> {
    let pair = |v: &Value| format!("{}/{}", text(&v["primary"]), text(&v["shadow"]));
    let ms = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_string(), |f| format!("{f:.1}"))
    };
    let age = (x["at_unix_ms"].as_u64()).map_or_else(
        || "-".to_string(),
        |at| format!("{} ago", duration(now_unix.saturating_sub(at / 1000))),
    );
    let headers: Vec<String> = (x["headers"].as_array().into_iter().flatten())
        .map(text)
        .collect();
    vec![
        format!("  {age}"),
        text(&x["outcome"]),
        text(&x["method"]),
        text(&x["path"]),
        pair(&x["status"]),
        pair(&x["body_bytes"]),
        format!(
            "{}/{}",
            ms(&x["latency_ms"]["primary"]),
            ms(&x["latency_ms"]["shadow"])
        ),
        if headers.is_empty() {
            "-".into()
        } else {
            headers.join(",")
        },
        text(&x["trace_id"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::facts::assert_all_shown;
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_then_the_mismatches() {
        let m = json!({ "mirrors": [{
            "route": "shop", "group": "shop-canary",
            "counts": { "sent": 0, "match": 20, "status_mismatch": 5, "body_mismatch": 1 },
            "noise": 3,
            "mismatches": [{
                "at_unix_ms": 1_000_000_u64, "outcome": "status_mismatch", "method": "GET",
                "path": "/checkout/1", "status": { "primary": 200, "shadow": 500 },
                "body_bytes": { "primary": 64, "shadow": 64 },
                "latency_ms": { "primary": 1.5, "shadow": 12.0 },
                "headers": ["x-version"], "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            }],
        }]});
        let text = render(&m, 1_012);
        assert_eq!(
            text.lines().next(),
            Some("shop -> shop-canary: 20 match, 5 status_mismatch, 1 body_mismatch, 3 noise (matches by the baseline)")
        );
        assert!(text.contains("  12 s ago  status_mismatch  GET     /checkout/1  200/500  64/64  1.5/12.0  x-version  4bf92f3577b34da6a3ce929d0e0e4736"), "{text}");
        assert_all_shown(&m, &text, &["at_unix_ms", "sent"]);
        assert_eq!(
            render(&json!({ "mirrors": [] }), 0),
            "no mirrored requests (a route with a `mirror:` section sends them)\n"
        );
    }
}
