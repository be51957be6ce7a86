//! The background service that does a rollout's HTTP: it asks `confirm_step` for the rollouts
//! in `awaiting_confirmation`, delivers each route's events in order, and evaluates the
//! Prometheus gates every `interval_ms` — each call in a task of its own, so that a slow or
//! dead server never delays another call, a judgement (the rollout service's, once a second)
//! or a request. In a fleet only the driver asks and queries; every gateway delivers what it
//! queued.

use super::client::{form_encode, send};
use super::confirm::Answer;
use super::metrics::{Hook, Outcome};
use super::outbox::backoff;
use super::sign::{read_secret, signature, HEADER};
use crate::rollout::controller::Controller;
use crate::rollout::prometheus::answer::value_of;
use crate::rollout::prometheus::readings::Reading;
use crate::rollout::prometheus::PromGate;
use crate::rollout::state::now_ms;
use crate::rollout::steps::Steps;
use crate::stamp::now_rfc3339;
use async_trait::async_trait;
use http::Method;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the service looks for work (a queued event wakes it at once).
const ROUND: Duration = Duration::from_millis(100);
/// How long a receiver of events may take to answer one.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct HooksService {
    controller: Arc<Controller>,
    steps: Arc<dyn Steps>,
    busy: Arc<Mutex<Busy>>,
}

/// The calls under way (one per route and step asked, one per route delivering, one per
/// gate), and when each gate was last queried.
#[derive(Default)]
struct Busy {
    confirming: BTreeSet<(String, usize)>,
    delivering: BTreeSet<String>,
    querying: BTreeSet<(String, String)>,
    queried_ms: BTreeMap<(String, String), u64>,
}

impl HooksService {
    pub fn new(controller: Arc<Controller>, steps: Arc<dyn Steps>) -> HooksService {
        HooksService {
            controller,
            steps,
            busy: Arc::default(),
        }
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, Busy> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts every call that is due.
    fn round(&self) {
        let drives = self.controller.drives();
        let plans = self.controller.plans();
        let now = now_ms();
        {
            let mut busy = self.busy();
            busy.queried_ms
                .retain(|(route, gate), _| gate_of(&plans, route, gate).is_some());
        }
        (self.controller.readings()).retain(|route, gate| gate_of(&plans, route, gate).is_some());
        if drives {
            for (route, plan) in &plans {
                for g in &plan.gates.prometheus {
                    self.query_if_due(route, g, now);
                }
            }
            for (route, step) in self.controller.confirmations_due(now) {
                self.ask_if_free(route, step);
            }
        }
        for route in self.controller.outbox().routes() {
            self.deliver_if_free(route);
        }
    }

    fn query_if_due(&self, route: &str, g: &PromGate, now: u64) {
        let key = (route.to_string(), g.name.clone());
        {
            let mut busy = self.busy();
            let last = busy.queried_ms.get(&key).copied();
            if busy.querying.contains(&key)
                || last.is_some_and(|l| now.saturating_sub(l) < g.interval_ms)
            {
                return;
            }
            busy.querying.insert(key.clone());
            busy.queried_ms.insert(key.clone(), now);
        }
        let (controller, busy, g) = (self.controller.clone(), self.busy.clone(), g.clone());
        tokio::spawn(async move {
            let reading = query(&g).await;
            if let Err(e) = &reading.value {
                log::debug!("rollout {}: {e}", key.0);
            }
            controller.readings().set(&key.0, &key.1, reading);
            busy.lock()
                .unwrap_or_else(|p| p.into_inner())
                .querying
                .remove(&key);
        });
    }

    /// Asks `route`'s confirmation of `step` unless an ask of it is under way (an ask of an
    /// earlier step still hanging does not hold this one back).
    fn ask_if_free(&self, route: String, step: usize) {
        if !self.busy().confirming.insert((route.clone(), step)) {
            return;
        }
        let (controller, steps, busy) = (
            self.controller.clone(),
            self.steps.clone(),
            self.busy.clone(),
        );
        tokio::spawn(async move {
            let hook = controller
                .plans()
                .get(&route)
                .and_then(|p| p.hooks.confirm_step.clone());
            let status = controller.status(&route, &*steps);
            if let (Some(hook), Some(status)) = (hook, status) {
                let (asked_ms, asked) = (now_ms(), now_rfc3339());
                let body = serde_json::to_vec(&status).unwrap_or_default();
                let json = [("content-type", "application/json".to_string())];
                let timeout = Duration::from_millis(hook.timeout_ms);
                let answer = match send(&hook.url, Method::POST, &json, body, timeout).await {
                    Ok(r) => Answer::Status(r.status),
                    Err(e) => Answer::Failed(e),
                };
                let outcome = match &answer {
                    Answer::Status(s) if (200..300).contains(s) => Outcome::Confirmed,
                    Answer::Status(_) => Outcome::Refused,
                    Answer::Failed(_) => Outcome::Failed,
                };
                controller
                    .hook_metrics()
                    .count(&route, Hook::ConfirmStep, outcome);
                controller.confirmation_answered(&route, step, &answer, asked_ms, asked);
            }
            busy.lock()
                .unwrap_or_else(|p| p.into_inner())
                .confirming
                .remove(&(route, step));
        });
    }

    fn deliver_if_free(&self, route: String) {
        if !self.busy().delivering.insert(route.clone()) {
            return;
        }
        let (controller, busy) = (self.controller.clone(), self.busy.clone());
        tokio::spawn(async move {
            deliver(&controller, &route).await;
            busy.lock()
                .unwrap_or_else(|p| p.into_inner())
                .delivering
                .remove(&route);
        });
    }
}

/// The gate's instant query, now.
async fn query(g: &PromGate) -> Reading {
    let (at_ms, at) = (now_ms(), now_rfc3339());
    let path = format!("/api/v1/query?query={}", form_encode(&g.query));
    let url = g.url.under(&path);
    let timeout = Duration::from_millis(g.timeout_ms());
    let value = match send(&url, Method::GET, &[], Vec::new(), timeout).await {
        Ok(r) => value_of(&g.query, r.status, &r.body),
        Err(e) => Err(format!("query {:?}: {e}", g.query)),
    };
    Reading {
        query: g.query.clone(),
        url: g.url.as_str().to_string(),
        at_ms,
        at,
        value,
    }
}

/// Sends `route`'s events, oldest first, each until the receiver takes it (2xx) or refuses it
/// for good (a 4xx but 408 and 429), waiting [`backoff`] between failed sends.
async fn deliver(controller: &Controller, route: &str) {
    let outbox = controller.outbox();
    let metrics = controller.hook_metrics();
    while let Some(p) = outbox.front(route) {
        let mut failures = 0;
        loop {
            let unix = now_ms() / 1000;
            let mut headers = vec![(
                "content-type",
                "application/cloudevents+json; charset=utf-8".to_string(),
            )];
            let secret = p.secret_file.as_deref().map(read_secret).transpose();
            let sent = match secret {
                Ok(secret) => {
                    if let Some(secret) = secret {
                        headers.push((HEADER, signature(&secret, unix, &p.body)));
                    }
                    send(
                        &p.url,
                        Method::POST,
                        &headers,
                        p.body.to_vec(),
                        EVENT_TIMEOUT,
                    )
                    .await
                }
                Err(e) => Err(format!("secret_file {e}")),
            };
            let outcome = match &sent {
                Ok(r) if (200..300).contains(&r.status) => Outcome::Delivered,
                Ok(r) if (400..500).contains(&r.status) && ![408, 429].contains(&r.status) => {
                    Outcome::Rejected
                }
                _ => Outcome::Failed,
            };
            metrics.count(route, Hook::Events, outcome);
            match (outcome, sent) {
                (Outcome::Delivered, _) => break,
                (Outcome::Rejected, Ok(r)) => {
                    log::warn!(
                        "rollout {route}: events hook {} refused event {} with HTTP {}: not sent again",
                        p.url,
                        p.seq,
                        r.status
                    );
                    break;
                }
                (_, sent) => {
                    failures += 1;
                    if failures == 1 {
                        let why = match sent {
                            Ok(r) => format!("HTTP {}", r.status),
                            Err(e) => e,
                        };
                        log::warn!(
                            "rollout {route}: events hook {}: event {} not taken ({why}); sent again with backoff ({} waiting)",
                            p.url,
                            p.seq,
                            outbox.waiting(route)
                        );
                    }
                    tokio::time::sleep(backoff(failures)).await;
                    if outbox.front(route).is_none_or(|f| f.seq != p.seq) {
                        break; // dropped from a full queue meanwhile
                    }
                }
            }
        }
        outbox.done(route, p.seq);
    }
}

fn gate_of<'a>(
    plans: &'a BTreeMap<String, crate::rollout::plan::Plan>,
    route: &str,
    gate: &str,
) -> Option<&'a PromGate> {
    (plans.get(route)?.gates.prometheus.iter()).find(|g| g.name == gate)
}

#[async_trait]
impl BackgroundService for HooksService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut round = tokio::time::interval(ROUND);
        round.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outbox = self.controller.outbox();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = round.tick() => {}
                _ = outbox.added.notified() => {}
            }
            self.round();
        }
    }
}
