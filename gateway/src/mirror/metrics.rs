//! `dyegate_mirror_requests_total{route,group,outcome}` and
//! `dyegate_mirror_latency_seconds{route,group,side}`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

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
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Dropped => "dropped",
            Outcome::TooLarge => "too_large",
            Outcome::ShadowError => "shadow_error",
            Outcome::ShadowTimeout => "shadow_timeout",
        }
    }
}

/// The mirror families, registered with the process's registry.
#[derive(Clone)]
pub struct MirrorMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl MirrorMetrics {
    /// Defines the families; panics only on a malformed definition (a programming error the
    /// unit test catches), never on input.
    pub fn new(metrics: &crate::telemetry::Metrics) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "dyegate_mirror_requests_total",
                "Mirrored copies of requests by route, shadow group and outcome (sent, dropped, too_large, shadow_error, shadow_timeout).",
            ),
            &["route", "group", "outcome"],
        )
        .unwrap_or_else(|e| panic!("dyegate_mirror_requests_total: {e}"));
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "dyegate_mirror_latency_seconds",
                "Time to a copy's whole answer (side=shadow), by route and shadow group.",
            ),
            &["route", "group", "side"],
        )
        .unwrap_or_else(|e| panic!("dyegate_mirror_latency_seconds: {e}"));
        metrics.register(vec![Box::new(requests.clone()), Box::new(latency.clone())]);
        MirrorMetrics { requests, latency }
    }

    pub fn outcome(&self, route: &str, group: &str, outcome: Outcome) {
        self.requests
            .with_label_values(&[route, group, outcome.as_str()])
            .inc();
    }

    pub fn shadow_latency(&self, route: &str, group: &str, seconds: f64) {
        self.latency
            .with_label_values(&[route, group, "shadow"])
            .observe(seconds);
    }
}
