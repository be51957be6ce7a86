//! `dyegate_mirror_requests_total{route,group,outcome}` and
//! `dyegate_mirror_latency_seconds{route,group,side}`.

use super::book::Book;
use super::tally::Tally;
use crate::telemetry::window::now_second;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use std::sync::Arc;

/// What became of a sampled request's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent and answered (no `compare`).
    Sent,
    /// Not sent: `max_in_flight` copies were in flight.
    Dropped,
    /// Not sent: the request's body was larger than `max_body_bytes`.
    TooLarge,
    /// The shadow refused, reset or answered something that is not HTTP.
    ShadowError,
    /// No whole answer within `timeout_ms`.
    ShadowTimeout,
    /// Compared: the same status, headers and body.
    Match,
    /// Compared: the statuses differ.
    StatusMismatch,
    /// Compared: the same status, but the bodies (hash, or length past `max_body_bytes`) or
    /// the headers (names and values, less `ignore_headers`) differ.
    BodyMismatch,
    /// Not compared: the real answer did not end whole (the client went away, the upstream
    /// broke it off, or dyegate answered an error itself); or not sent: the real request never
    /// reached its upstream, or its body never ended.
    PrimaryAborted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Dropped => "dropped",
            Outcome::TooLarge => "too_large",
            Outcome::ShadowError => "shadow_error",
            Outcome::ShadowTimeout => "shadow_timeout",
            Outcome::Match => "match",
            Outcome::StatusMismatch => "status_mismatch",
            Outcome::BodyMismatch => "body_mismatch",
            Outcome::PrimaryAborted => "primary_aborted",
        }
    }
}

/// The mirror families, registered with the process's registry.
#[derive(Clone)]
pub struct MirrorMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
    /// The same counts, and the last mismatches, for `GET /mirrors`.
    book: Arc<Book>,
    /// The same copies per second, for a rollout's shadow stage.
    tally: Arc<Tally>,
}

impl MirrorMetrics {
    /// Defines the families; panics only on a malformed definition (a programming error the
    /// unit test catches), never on input.
    pub fn new(metrics: &crate::telemetry::Metrics) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "dyegate_mirror_requests_total",
                "Mirrored copies of requests by route, shadow group and outcome (sent, match, status_mismatch, body_mismatch, shadow_error, shadow_timeout, dropped, too_large, primary_aborted).",
            ),
            &["route", "group", "outcome"],
        )
        .unwrap_or_else(|e| panic!("dyegate_mirror_requests_total: {e}"));
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "dyegate_mirror_latency_seconds",
                "Time to a whole answer of a mirrored request, the copy's (side=shadow) and, with compare, the real one's (side=primary), by route and shadow group.",
            ),
            &["route", "group", "side"],
        )
        .unwrap_or_else(|e| panic!("dyegate_mirror_latency_seconds: {e}"));
        metrics.register(vec![Box::new(requests.clone()), Box::new(latency.clone())]);
        MirrorMetrics {
            requests,
            latency,
            book: Arc::default(),
            tally: metrics.shadow_tally().clone(),
        }
    }

    /// The counts and last mismatches `GET /mirrors` shows.
    pub fn book(&self) -> Arc<Book> {
        self.book.clone()
    }

    pub fn outcome(&self, route: &str, group: &str, outcome: Outcome) {
        self.requests
            .with_label_values(&[route, group, outcome.as_str()])
            .inc();
        self.book.count(route, group, outcome);
        self.tally.outcome(route, group, outcome, now_second());
    }

    pub fn primary_latency(&self, route: &str, group: &str, seconds: f64) {
        self.latency
            .with_label_values(&[route, group, "primary"])
            .observe(seconds);
    }

    pub fn shadow_latency(&self, route: &str, group: &str, seconds: f64) {
        self.latency
            .with_label_values(&[route, group, "shadow"])
            .observe(seconds);
    }

    /// A copy's whole answer from the shadow: its status and time (seconds). Counted for a
    /// rollout's shadow stage (a 5xx is the shadow's failure whatever the outcome).
    pub fn shadow_answer(&self, route: &str, group: &str, status: u16, seconds: f64) {
        self.shadow_latency(route, group, seconds);
        let millis = (seconds * 1000.0) as u64;
        (self.tally).answer(route, group, status, millis, now_second());
    }
}
