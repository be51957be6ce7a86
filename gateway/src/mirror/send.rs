//! One copy sent to its shadow over the copies' [`Pool`], one deadline over connect, request
//! and the whole answer (read, summarized, thrown away), never retried. The copy's place in
//! `max_in_flight` is held by its [`Entry`] until it ends, however it ends; with `compare` its
//! answer goes to the copy's meeting with the real one ([`super::meet`]).

use super::answer::Summary;
use super::meet::{Shadow, ShadowHalf};
use super::pool::{Outgoing, Pool};
use super::{MirrorMetrics, Outcome};
use crate::routing::{Mirror, Route};
use pingora::upstreams::peer::HttpPeer;
use std::sync::Arc;
use std::time::Duration;

/// An admitted copy of one mirror entry: holds its place in the entry's `max_in_flight`.
pub struct Entry {
    pub(super) route: Arc<Route>,
    pub(super) index: usize,
    pub(super) group: Arc<str>,
    target: Option<Box<HttpPeer>>,
    /// With `compare.baseline`: the stable target the second copy goes to.
    baseline: Option<Box<HttpPeer>>,
}

impl Entry {
    pub(super) fn new(route: Arc<Route>, index: usize, group: Arc<str>) -> Entry {
        Entry {
            route,
            index,
            group,
            target: None,
            baseline: None,
        }
    }

    pub(super) fn baseline(mut self, target: Option<HttpPeer>) -> Entry {
        self.baseline = target.map(Box::new);
        self
    }

    pub(super) fn to(mut self, target: HttpPeer) -> Entry {
        self.target = Some(Box::new(target));
        self
    }

    pub(super) fn mirror(&self) -> Option<&Mirror> {
        self.route.mirror.get(self.index)
    }

    /// Counts how the copy ended (its place is given back when it is dropped).
    pub(super) fn finish(self, metrics: &MirrorMetrics, outcome: Outcome) {
        metrics.outcome(&self.route.name, &self.group, outcome);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(m) = self.mirror() {
            m.done();
        }
    }
}

/// A copy ready to go.
pub struct Copy {
    pub request: Outgoing,
    pub entry: Entry,
    /// With `compare`: where its answer meets the real one.
    pub meet: Option<ShadowHalf>,
}

/// Sends `copy` (and its baseline copy, at the same time) and counts how it ended; meant to
/// run in its own task.
pub async fn send(copy: Copy, pool: Arc<Pool>, metrics: MirrorMetrics) {
    let Copy {
        request,
        mut entry,
        meet,
    } = copy;
    let (timeout, limit) = entry
        .mirror()
        .map_or((Duration::ZERO, 0), |m| (m.timeout, m.max_body_bytes));
    let baseline = entry.baseline.take().filter(|_| meet.is_some());
    let second = baseline.as_ref().map(|_| request.clone());
    let exchange = |peer: Option<Box<HttpPeer>>, request| {
        let pool = pool.clone();
        async move {
            let Some(peer) = peer else {
                return Err(Outcome::ShadowError);
            };
            match tokio::time::timeout(timeout, pool.exchange(&peer, request, limit)).await {
                Err(_) => Err(Outcome::ShadowTimeout),
                Ok(Err(e)) => {
                    log::debug!("mirror to {}: {e}", peer._address);
                    Err(Outcome::ShadowError)
                }
                Ok(Ok(answer)) => Ok(answer),
            }
        }
    };
    let (answer, base): (Result<Summary, Outcome>, Option<Result<Summary, Outcome>>) = match second
    {
        None => (exchange(entry.target.take(), request).await, None),
        Some(second) => {
            let (a, b) = tokio::join!(
                exchange(entry.target.take(), request),
                exchange(baseline, second)
            );
            (a, Some(b))
        }
    };
    if let Ok(a) = &answer {
        let seconds = a.latency.as_secs_f64();
        metrics.shadow_answer(&entry.route.name, &entry.group, a.status, seconds);
    }
    match meet {
        // The entry's place is given back now; the meeting records the outcome.
        Some(meet) => meet.deliver(answer.map(|answer| Shadow {
            answer,
            // A baseline that failed discounts nothing.
            baseline: base.and_then(Result::ok),
        })),
        None => entry.finish(&metrics, answer.map_or_else(|o| o, |_| Outcome::Sent)),
    }
}
