//! The events waiting for the events hook: one bounded queue per route, delivered in order
//! (the service sends a route's oldest event until it is taken, then the next). A full queue
//! drops its oldest event (counted), never blocks the rollout that adds one. A binary upgrade
//! hands the queues to the next process ([`Outbox::hand_over`], [`Outbox::take_over`]): the
//! events waiting are delivered by it, and each route's sequence goes on.

use super::metrics::{Hook, HookMetrics, Outcome};
use super::HookUrl;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Events kept waiting per route while the receiver does not take them.
pub const QUEUE: usize = 256;

/// An event waiting, with where it goes (as the plan said when it happened).
#[derive(Debug, Clone)]
pub struct Pending {
    /// The route's event count, from 1.
    pub seq: u64,
    pub url: HookUrl,
    pub secret_file: Option<PathBuf>,
    pub body: Arc<[u8]>,
}

#[derive(Default)]
struct Queue {
    last_seq: u64,
    waiting: VecDeque<Pending>,
}

/// A route's queue as handed to the next process: the events not taken yet, oldest first, and
/// the route's event count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueueRecord {
    pub route: String,
    pub last_seq: u64,
    pub events: Vec<EventRecord>,
}

/// One event waiting, as handed over (its body is the JSON envelope, sent as it is).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    pub seq: u64,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    pub body: String,
}

pub struct Outbox {
    queues: Mutex<BTreeMap<String, Queue>>,
    /// Set once the queues went to the next process: this one delivers nothing more (an event
    /// is never sent by two processes at once).
    handed_over: AtomicBool,
    /// Woken by every event added.
    pub added: tokio::sync::Notify,
    metrics: HookMetrics,
}

impl Outbox {
    pub fn new(metrics: HookMetrics) -> Outbox {
        Outbox {
            queues: Mutex::new(BTreeMap::new()),
            handed_over: AtomicBool::new(false),
            added: tokio::sync::Notify::new(),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Queue>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the event `body(seq)` to `route`'s queue.
    pub fn push(
        &self,
        route: &str,
        url: &HookUrl,
        secret_file: Option<&PathBuf>,
        body: impl FnOnce(u64) -> Vec<u8>,
    ) {
        let dropped = {
            let mut queues = self.lock();
            let q = queues.entry(route.to_string()).or_default();
            q.last_seq += 1;
            q.waiting.push_back(Pending {
                seq: q.last_seq,
                url: url.clone(),
                secret_file: secret_file.cloned(),
                body: body(q.last_seq).into(),
            });
            let over = q.waiting.len().saturating_sub(QUEUE);
            q.waiting.drain(..over);
            over
        };
        for _ in 0..dropped {
            self.metrics.count(route, Hook::Events, Outcome::Dropped);
        }
        if dropped > 0 {
            log::warn!("rollout {route}: events hook: queue full ({QUEUE}), {dropped} oldest event(s) dropped");
        }
        self.added.notify_one();
    }

    /// `route`'s oldest waiting event (none once the queues were handed over: a send under way
    /// is not tried again).
    pub fn front(&self, route: &str) -> Option<Pending> {
        if self.handed_over.load(Ordering::Acquire) {
            return None;
        }
        self.lock().get(route)?.waiting.front().cloned()
    }

    /// Done with event `seq` of `route` (taken, or given up on).
    pub fn done(&self, route: &str, seq: u64) {
        if let Some(q) = self.lock().get_mut(route) {
            if q.waiting.front().is_some_and(|p| p.seq == seq) {
                q.waiting.pop_front();
            }
        }
    }

    /// The routes with events waiting (none once the queues were handed over).
    pub fn routes(&self) -> Vec<String> {
        if self.handed_over.load(Ordering::Acquire) {
            return Vec::new();
        }
        (self.lock().iter())
            .filter(|(_, q)| !q.waiting.is_empty())
            .map(|(r, _)| r.clone())
            .collect()
    }

    pub fn waiting(&self, route: &str) -> usize {
        self.lock().get(route).map_or(0, |q| q.waiting.len())
    }

    /// Every route's queue, for the next process (a binary upgrade, or the old binary again on
    /// a revert); from now on this process delivers nothing. An event being sent at this moment
    /// is handed over too: the next process may send it again (same `id` and `sequence`).
    pub fn hand_over(&self) -> Vec<QueueRecord> {
        let queues = self.lock();
        self.handed_over.store(true, Ordering::Release);
        (queues.iter())
            .map(|(route, q)| QueueRecord {
                route: route.clone(),
                last_seq: q.last_seq,
                events: (q.waiting.iter())
                    .map(|p| EventRecord {
                        seq: p.seq,
                        url: p.url.as_str().to_string(),
                        secret_file: p.secret_file.clone(),
                        body: String::from_utf8_lossy(&p.body).into_owned(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Takes the queues the previous process handed over, before this one adds an event: their
    /// events are delivered first, and each route's count goes on from theirs. An event whose
    /// URL does not parse any more is dropped (counted).
    pub fn take_over(&self, records: &[QueueRecord]) {
        let mut dropped = Vec::new();
        {
            let mut queues = self.lock();
            for r in records {
                let q = queues.entry(r.route.clone()).or_default();
                let mine = std::mem::take(&mut q.waiting);
                for e in &r.events {
                    match HookUrl::parse(&e.url) {
                        Ok(url) => q.waiting.push_back(Pending {
                            seq: e.seq,
                            url,
                            secret_file: e.secret_file.clone(),
                            body: e.body.as_bytes().into(),
                        }),
                        Err(_) => dropped.push(r.route.clone()),
                    }
                }
                // Events of this process (none, before it serves) come after, renumbered.
                let carried = r.last_seq.max(q.last_seq);
                q.last_seq = carried;
                for mut p in mine {
                    q.last_seq += 1;
                    p.seq = q.last_seq;
                    q.waiting.push_back(p);
                }
                let over = q.waiting.len().saturating_sub(QUEUE);
                q.waiting.drain(..over);
                dropped.extend(std::iter::repeat_n(r.route.clone(), over));
            }
        }
        for route in dropped {
            self.metrics.count(&route, Hook::Events, Outcome::Dropped);
        }
        self.added.notify_one();
    }
}

/// The wait before sending an event again after `failures` failed sends: 100 ms doubling, at
/// most 5 s (a receiver back up gets the queue within 5 s).
pub fn backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(5_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox::new(HookMetrics::new(&crate::telemetry::Metrics::new()))
    }

    #[test]
    fn in_order_per_route_and_bounded() {
        let o = outbox();
        let url = HookUrl::parse("http://127.0.0.1:1/e").expect("url");
        for _ in 0..QUEUE + 3 {
            o.push("shop", &url, None, |seq| seq.to_string().into_bytes());
        }
        o.push("api", &url, None, |seq| seq.to_string().into_bytes());
        assert_eq!(o.waiting("shop"), QUEUE);
        let first = o.front("shop").expect("event");
        assert_eq!(first.seq, 4, "the 3 oldest were dropped");
        o.done("shop", 3); // not the front: nothing happens
        assert_eq!(o.front("shop").map(|p| p.seq), Some(4));
        o.done("shop", 4);
        assert_eq!(o.front("shop").map(|p| p.seq), Some(5));
        assert_eq!(o.front("api").map(|p| p.seq), Some(1));
        assert_eq!(o.routes(), vec!["api".to_string(), "shop".to_string()]);
    }

    #[test]
    fn queues_handed_over_are_delivered_first_and_the_sequence_goes_on() {
        let old = outbox();
        let url = HookUrl::parse("http://127.0.0.1:1/e").expect("url");
        for _ in 0..3 {
            old.push("shop", &url, None, |seq| {
                format!("{{\"seq\":{seq}}}").into_bytes()
            });
        }
        old.done("shop", 1);
        let records = old.hand_over();
        assert!(
            old.routes().is_empty(),
            "the old process delivers nothing more"
        );
        assert!(old.front("shop").is_none(), "nor tries a send again");
        // Through the handover file's JSON and back.
        let text = serde_json::to_string(&records).expect("json");
        let records: Vec<QueueRecord> = serde_json::from_str(&text).expect("json");

        let new = outbox();
        new.take_over(&records);
        assert_eq!(new.routes(), vec!["shop".to_string()]);
        let first = new.front("shop").expect("event");
        assert_eq!((first.seq, &*first.body), (2, &b"{\"seq\":2}"[..]));
        assert_eq!(first.url.as_str(), "http://127.0.0.1:1/e");
        assert_eq!(new.waiting("shop"), 2);
        new.push("shop", &url, None, |seq| seq.to_string().into_bytes());
        new.done("shop", 2);
        new.done("shop", 3);
        assert_eq!(
            new.front("shop").map(|p| p.seq),
            Some(4),
            "the count went on"
        );
    }

    #[test]
    fn backoff_doubles_up_to_5_s() {
        let ms: Vec<u128> = (1..=8).map(|f| backoff(f).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(1000).as_millis(), 5000);
    }
}
