//! Each route's traffic over the last minute, from the gateway's own counters, for the live
//! view: the realised share of each group (requests per group in the last 60 s), and the
//! request and error rates of the last 10 s. A sampler adds every pair's totals once a second
//! ([`Traffic::sample`]); each pair keeps [`KEPT`] samples, bounded: [`PAIR_BYTES`] bytes a
//! (route, group) pair, besides its names.

use super::metrics::PairTotal;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};

/// The realised share is over this many seconds.
pub const SHARE_SECONDS: u64 = 60;
/// The rates are over this many seconds.
pub const RATE_SECONDS: u64 = 10;
/// Samples kept per pair: one a second, enough to span [`SHARE_SECONDS`].
pub const KEPT: usize = SHARE_SECONDS as usize + 1;
/// The memory of one pair's samples.
pub const PAIR_BYTES: usize = KEPT * std::mem::size_of::<Sample>();

/// One pair's totals at a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    t: u64,
    requests: u64,
    errors: u64,
}

/// Every pair's last samples, by route then group.
#[derive(Debug, Default)]
pub struct Traffic {
    pairs: BTreeMap<String, BTreeMap<String, VecDeque<Sample>>>,
}

/// What a pair did between two samples at most `seconds` apart.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Delta {
    requests: u64,
    errors: u64,
    seconds: u64,
}

fn delta(samples: &VecDeque<Sample>, seconds: u64) -> Delta {
    let Some(last) = samples.back() else {
        return Delta::default();
    };
    let since = last.t.saturating_sub(seconds);
    let Some(first) = samples.iter().find(|s| s.t >= since) else {
        return Delta::default();
    };
    Delta {
        // Totals only grow; a restart's handover could start lower: no negative counts.
        requests: last.requests.saturating_sub(first.requests),
        errors: last.errors.saturating_sub(first.errors),
        seconds: last.t - first.t,
    }
}

impl Traffic {
    /// Adds the totals of second `t`; forgets the pairs that are no more.
    pub fn sample(&mut self, totals: &[PairTotal], t: u64) {
        for p in totals {
            let samples = (self.pairs.entry(p.route.clone()).or_default())
                .entry(p.group.clone())
                .or_default();
            let s = Sample {
                t,
                requests: p.requests,
                errors: p.errors,
            };
            match samples.back_mut() {
                Some(last) if last.t == t => *last = s,
                _ => {
                    if samples.len() == KEPT {
                        samples.pop_front();
                    }
                    samples.push_back(s);
                }
            }
        }
        for (route, groups) in &mut self.pairs {
            groups.retain(|g, _| totals.iter().any(|p| p.route == *route && p.group == *g));
        }
        self.pairs.retain(|_, groups| !groups.is_empty());
    }

    /// `GET /traffic`: per route, each group's requests and realised share of the last minute,
    /// and the route's request and error rates of the last 10 seconds. Only `routes` (the
    /// running table's) are shown.
    pub fn json(&self, routes: &[&str]) -> Value {
        let mut out = Map::new();
        for route in routes {
            let Some(groups) = self.pairs.get(*route) else {
                continue;
            };
            let minute: Vec<(&String, Delta)> = (groups.iter())
                .map(|(g, s)| (g, delta(s, SHARE_SECONDS)))
                .collect();
            let total: u64 = minute.iter().map(|(_, d)| d.requests).sum();
            let recent: Vec<Delta> = groups.values().map(|s| delta(s, RATE_SECONDS)).collect();
            let (requests, errors) = recent
                .iter()
                .fold((0, 0), |(r, e), d| (r + d.requests, e + d.errors));
            let seconds = recent.iter().map(|d| d.seconds).max().unwrap_or(0);
            let groups: Map<String, Value> = (minute.iter())
                .map(|(g, d)| {
                    let share = (total > 0).then(|| d.requests as f64 / total as f64);
                    (
                        g.to_string(),
                        json!({ "requests": d.requests, "errors": d.errors, "share": share, "seconds": d.seconds }),
                    )
                })
                .collect();
            out.insert(
                route.to_string(),
                json!({
                    "groups": groups,
                    "requests_per_second": (seconds > 0).then(|| requests as f64 / seconds as f64),
                    "error_rate": (requests > 0).then(|| errors as f64 / requests as f64),
                }),
            );
        }
        json!({ "share_seconds": SHARE_SECONDS, "rate_seconds": RATE_SECONDS, "routes": out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(route: &str, group: &str, requests: u64, errors: u64) -> PairTotal {
        PairTotal {
            route: route.into(),
            group: group.into(),
            requests,
            errors,
        }
    }

    #[test]
    fn realised_share_is_the_last_minute_of_requests() {
        let mut t = Traffic::default();
        // 100 s of 9 stable and 1 canary request a second, then the canary takes half.
        for s in 0..100 {
            t.sample(
                &[
                    total("shop", "stable", 9 * s, 0),
                    total("shop", "canary", s, 0),
                ],
                s,
            );
        }
        let j = t.json(&["shop"]);
        let share = |j: &Value, g: &str| j["routes"]["shop"]["groups"][g]["share"].as_f64();
        assert_eq!(share(&j, "canary"), Some(0.1));
        assert_eq!(j["routes"]["shop"]["groups"]["canary"]["requests"], 60);
        assert_eq!(j["routes"]["shop"]["requests_per_second"], 10.0);
        for s in 100..160 {
            let c = 99 + 5 * (s - 99);
            t.sample(
                &[
                    total("shop", "stable", 891 + 5 * (s - 99), 0),
                    total("shop", "canary", c, 0),
                ],
                s,
            );
        }
        let j = t.json(&["shop"]);
        assert_eq!(share(&j, "canary"), Some(0.5));
    }

    #[test]
    fn error_rate_of_the_last_ten_seconds_and_bounded_memory() {
        let mut t = Traffic::default();
        for s in 0..200 {
            t.sample(&[total("api", "a", 10 * s, s)], s);
        }
        let j = t.json(&["api"]);
        assert_eq!(j["routes"]["api"]["error_rate"], 0.1);
        assert!(t.pairs["api"]["a"].len() == KEPT);
        // A route not in the running table is not shown; a pair no more is forgotten.
        assert_eq!(t.json(&[])["routes"], json!({}));
        t.sample(&[], 200);
        assert!(t.pairs.is_empty());
    }

    #[test]
    fn no_traffic_has_no_share() {
        let mut t = Traffic::default();
        t.sample(&[total("idle", "a", 0, 0)], 1);
        let j = t.json(&["idle"]);
        assert_eq!(j["routes"]["idle"]["groups"]["a"]["share"], Value::Null);
        assert_eq!(j["routes"]["idle"]["error_rate"], Value::Null);
    }
}
