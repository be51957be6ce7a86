//! Where a compared copy's two answers meet (`compare:`): the real one, summarized from the
//! proxy's response hooks ([`Primary`]), and the shadow's, from the copy's task. Whichever
//! arrives second records the one outcome; a side that goes away without its answer (a
//! client that left, a copy that failed) still arrives, so every copy is counted exactly once.

use super::answer::{judge, Summarizer, Summary};
use super::book::Mismatch;
use super::{MirrorMetrics, Outcome};
use crate::routing::Route;
use http::HeaderMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The request a meeting is about, as `/mirrors` lists it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub trace_id: Option<String>,
}

/// The real answer (`None` within: it did not end whole) and the shadow's (or how it failed)
/// with the baseline's when there is one, each once it has arrived.
type Sides = (Option<Option<Summary>>, Option<Result<Shadow, Outcome>>);

/// The shadow's whole answer, and the baseline's (`compare.baseline`) when it came whole.
pub struct Shadow {
    pub answer: Summary,
    pub baseline: Option<Summary>,
}

struct Meeting {
    route: Arc<Route>,
    index: usize,
    group: Arc<str>,
    request: Request,
    metrics: MirrorMetrics,
    sides: Mutex<Sides>,
}

/// The real request's side of one meeting.
pub struct PrimaryHalf(Option<Arc<Meeting>>);
/// The copy's side of one meeting.
pub struct ShadowHalf(Option<Arc<Meeting>>);

/// A meeting for the copy of mirror entry `index` of `route` to `group`.
pub fn meeting(
    route: Arc<Route>,
    index: usize,
    group: Arc<str>,
    request: Request,
    metrics: MirrorMetrics,
) -> (PrimaryHalf, ShadowHalf) {
    let m = Arc::new(Meeting {
        route,
        index,
        group,
        request,
        metrics,
        sides: Mutex::new((None, None)),
    });
    (PrimaryHalf(Some(m.clone())), ShadowHalf(Some(m)))
}

impl PrimaryHalf {
    /// The real answer, whole (`Some`) or not (`None`).
    fn deliver(mut self, answer: Option<Summary>) {
        if let Some(m) = self.0.take() {
            m.arrive(|sides| sides.0 = Some(answer));
        }
    }
}

impl Drop for PrimaryHalf {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            m.arrive(|sides| sides.0 = Some(None));
        }
    }
}

impl ShadowHalf {
    /// The shadow's answer, or how the copy failed.
    pub fn deliver(mut self, answer: Result<Shadow, Outcome>) {
        if let Some(m) = self.0.take() {
            m.arrive(|sides| sides.1 = Some(answer));
        }
    }
}

impl Drop for ShadowHalf {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            m.arrive(|sides| sides.1 = Some(Err(Outcome::ShadowError)));
        }
    }
}

impl Meeting {
    fn arrive(&self, f: impl FnOnce(&mut Sides)) {
        let both = {
            let Ok(mut sides) = self.sides.lock() else {
                return;
            };
            f(&mut sides);
            match &mut *sides {
                (p @ Some(_), s @ Some(_)) => p.take().zip(s.take()),
                _ => None,
            }
        };
        if let Some((primary, shadow)) = both {
            self.record(primary, shadow);
        }
    }

    fn record(&self, primary: Option<Summary>, shadow: Result<Shadow, Outcome>) {
        let (route, group) = (&*self.route.name, &*self.group);
        let Some(mirror) = self.route.mirror.get(self.index) else {
            return;
        };
        let (shadow, Some(compare)) = (shadow, mirror.compare.as_ref()) else {
            return;
        };
        let shadow = match shadow {
            Err(failed) => return self.metrics.outcome(route, group, failed),
            Ok(s) => s,
        };
        let Some(primary) = primary else {
            return self.metrics.outcome(route, group, Outcome::PrimaryAborted);
        };
        (self.metrics).primary_latency(route, group, primary.latency.as_secs_f64());
        let Shadow {
            answer: shadow,
            baseline,
        } = shadow;
        let limit = mirror.max_body_bytes;
        let verdict = judge(compare, limit, &primary, &shadow, baseline.as_ref());
        self.metrics.outcome(route, group, verdict.outcome);
        if verdict.noise {
            self.metrics.book().noise(route, group);
        }
        if verdict.outcome == Outcome::Match {
            return;
        }
        let ms = |s: &Summary| s.latency.as_secs_f64() * 1000.0;
        let at = SystemTime::now().duration_since(UNIX_EPOCH);
        let mismatch = Mismatch {
            at_unix_ms: at.map_or(0, |d| d.as_millis() as u64),
            outcome: verdict.outcome,
            method: self.request.method.clone(),
            path: self.request.path.clone(),
            status: (primary.status, shadow.status),
            body_bytes: (primary.len, shadow.len),
            latency_ms: (ms(&primary), ms(&shadow)),
            headers: verdict.headers,
            trace_id: self.request.trace_id.clone(),
        };
        self.metrics.book().mismatch(route, group, mismatch);
    }
}

/// The real answer of a request with compared copies, summarized as it goes downstream.
pub struct Primary {
    halves: Vec<PrimaryHalf>,
    answer: Option<Summarizer>,
    /// The largest `max_body_bytes` of the compared entries: the body is hashed up to it.
    limit: u64,
    started: Instant,
}

impl Primary {
    /// `None` when no copy is compared.
    pub fn new(halves: Vec<PrimaryHalf>, limit: u64, started: Instant) -> Option<Box<Primary>> {
        (!halves.is_empty()).then(|| {
            Box::new(Primary {
                halves,
                answer: None,
                limit,
                started,
            })
        })
    }

    /// The answer's head as the upstream sent it (`response_filter`).
    pub fn head(&mut self, status: u16, headers: &HeaderMap) {
        self.answer = Some(Summarizer::new(status, headers, self.limit));
    }

    /// A piece of the answer's body (`response_body_filter`).
    pub fn body(&mut self, chunk: &[u8]) {
        if let Some(a) = self.answer.as_mut() {
            a.chunk(chunk);
        }
    }

    /// The request has ended (`logging`): `whole` when its answer went downstream whole.
    pub fn finish(self, whole: bool) {
        let Primary {
            halves,
            answer,
            started,
            ..
        } = self;
        let summary = answer
            .filter(|_| whole)
            .map(|a| a.finish(started.elapsed()));
        for half in halves {
            half.deliver(summary.clone());
        }
    }
}
