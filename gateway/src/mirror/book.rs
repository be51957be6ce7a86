//! What `GET /mirrors` shows: per route and shadow group, the copies counted by outcome and the
//! last [`KEPT`] mismatches (method, path, both statuses, body lengths and latencies, the
//! names of the differing headers, the trace id; never a body, never a header value).

use super::Outcome;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Mismatches kept per route and group.
pub const KEPT: usize = 50;

/// Every outcome, in the order `/mirrors` lists them.
pub const OUTCOMES: [Outcome; 9] = [
    Outcome::Sent,
    Outcome::Match,
    Outcome::StatusMismatch,
    Outcome::BodyMismatch,
    Outcome::ShadowError,
    Outcome::ShadowTimeout,
    Outcome::Dropped,
    Outcome::TooLarge,
    Outcome::PrimaryAborted,
];

/// One compared request whose answers differed.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub at_unix_ms: u64,
    pub outcome: Outcome,
    pub method: String,
    /// The path without the query (which may carry secrets).
    pub path: String,
    pub status: (u16, u16),
    pub body_bytes: (u64, u64),
    pub latency_ms: (f64, f64),
    pub headers: Vec<String>,
    pub trace_id: Option<String>,
}

#[derive(Default)]
struct Entry {
    route: Arc<str>,
    group: Arc<str>,
    counts: [u64; OUTCOMES.len()],
    /// Matches only because the baseline showed the same differences.
    noise: u64,
    mismatches: VecDeque<Mismatch>,
}

/// The counts and mismatches of every route and group that mirrored since the process started.
#[derive(Default)]
pub struct Book {
    entries: Mutex<Vec<Entry>>,
}

impl Book {
    /// Runs `f` on the entry of `route` and `group` (made on first use).
    fn with(&self, route: &str, group: &str, f: impl FnOnce(&mut Entry)) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let i = match (entries.iter()).position(|e| &*e.route == route && &*e.group == group) {
            Some(i) => i,
            None => {
                entries.push(Entry {
                    route: route.into(),
                    group: group.into(),
                    ..Entry::default()
                });
                entries.len() - 1
            }
        };
        if let Some(e) = entries.get_mut(i) {
            f(e);
        }
    }

    pub fn count(&self, route: &str, group: &str, outcome: Outcome) {
        let Some(k) = OUTCOMES.iter().position(|o| *o == outcome) else {
            return;
        };
        self.with(route, group, |e| e.counts[k] += 1);
    }

    /// A `match` that the baseline made one (counted in `match` too).
    pub fn noise(&self, route: &str, group: &str) {
        self.with(route, group, |e| e.noise += 1);
    }

    pub fn mismatch(&self, route: &str, group: &str, m: Mismatch) {
        self.with(route, group, |e| {
            if e.mismatches.len() == KEPT {
                e.mismatches.pop_back();
            }
            e.mismatches.push_front(m);
        });
    }

    /// `GET /mirrors` (every route) or `GET /mirrors/ROUTE`: `{"mirrors": [{route, group,
    /// counts: {outcome: n}, mismatches: [newest first]}]}`.
    pub fn to_json(&self, route: Option<&str>) -> Value {
        let Ok(entries) = self.entries.lock() else {
            return json!({ "mirrors": [] });
        };
        let list: Vec<Value> = (entries.iter())
            .filter(|e| route.is_none_or(|r| *e.route == *r))
            .map(|e| {
                let counts: serde_json::Map<String, Value> = (OUTCOMES.iter().zip(e.counts))
                    .map(|(o, n)| (o.as_str().to_string(), json!(n)))
                    .collect();
                json!({
                    "route": &*e.route,
                    "group": &*e.group,
                    "counts": counts,
                    "noise": e.noise,
                    "mismatches": e.mismatches.iter().map(mismatch_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "mirrors": list })
    }
}

fn mismatch_json(m: &Mismatch) -> Value {
    json!({
        "at_unix_ms": m.at_unix_ms,
        "outcome": m.outcome.as_str(),
        "method": m.method,
        "path": m.path,
        "status": { "primary": m.status.0, "shadow": m.status.1 },
        "body_bytes": { "primary": m.body_bytes.0, "shadow": m.body_bytes.1 },
        "latency_ms": { "primary": m.latency_ms.0, "shadow": m.latency_ms.1 },
        "headers": m.headers,
        "trace_id": m.trace_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatch(path: &str) -> Mismatch {
        Mismatch {
            at_unix_ms: 1,
            outcome: Outcome::StatusMismatch,
            method: "GET".into(),
            path: path.into(),
            status: (200, 500),
            body_bytes: (2, 3),
            latency_ms: (1.5, 2.0),
            headers: vec!["x-version".into()],
            trace_id: None,
        }
    }

    #[test]
    fn counts_per_route_and_group_and_the_last_mismatches() {
        let book = Book::default();
        book.count("shop", "canary", Outcome::Match);
        book.count("shop", "canary", Outcome::Match);
        book.count("shop", "canary", Outcome::StatusMismatch);
        book.count("cart", "canary", Outcome::Dropped);
        book.noise("shop", "canary");
        for i in 0..(KEPT + 5) {
            book.mismatch("shop", "canary", mismatch(&format!("/{i}")));
        }
        let shop = book.to_json(Some("shop"));
        let list = shop["mirrors"].as_array().expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["counts"]["match"], 2);
        assert_eq!(list[0]["counts"]["status_mismatch"], 1);
        assert_eq!(list[0]["counts"]["dropped"], 0);
        assert_eq!(list[0]["noise"], 1);
        let kept = list[0]["mismatches"].as_array().expect("mismatches");
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0]["path"], format!("/{}", KEPT + 4));
        assert_eq!(kept[0]["status"]["shadow"], 500);
        assert_eq!(
            book.to_json(None)["mirrors"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(book.to_json(Some("none"))["mirrors"], json!([]));
    }
}
