//! The events waiting for the events hook: one bounded queue per route, delivered in order
//! (the service sends a route's oldest event until it is taken, then the next). A full queue
//! drops its oldest event (counted), never blocks the rollout that adds one.

use super::metrics::{Hook, HookMetrics, Outcome};
use super::HookUrl;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
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

pub struct Outbox {
    queues: Mutex<BTreeMap<String, Queue>>,
    /// Woken by every event added.
    pub added: tokio::sync::Notify,
    metrics: HookMetrics,
}

impl Outbox {
    pub fn new(metrics: HookMetrics) -> Outbox {
        Outbox {
            queues: Mutex::new(BTreeMap::new()),
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

    /// `route`'s oldest waiting event.
    pub fn front(&self, route: &str) -> Option<Pending> {
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

    /// The routes with events waiting.
    pub fn routes(&self) -> Vec<String> {
        (self.lock().iter())
            .filter(|(_, q)| !q.waiting.is_empty())
            .map(|(r, _)| r.clone())
            .collect()
    }

    pub fn waiting(&self, route: &str) -> usize {
        self.lock().get(route).map_or(0, |q| q.waiting.len())
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
    fn backoff_doubles_up_to_5_s() {
        let ms: Vec<u128> = (1..=8).map(|f| backoff(f).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(1000).as_millis(), 5000);
    }
}
