//! `dyegate_tls_handshakes_total{result}`, `dyegate_tls_certificate_expiry_seconds{name}` and
//! `dyegate_tls_certificate_reloads_total{result}`.

use super::sni::SniTable;
use arc_swap::ArcSwap;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use std::sync::Arc;
use std::time::SystemTime;

/// How a TLS handshake on an HTTPS listener ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    Ok,
    /// The client went away or the handshake failed (no common version or cipher, bad
    /// message, unknown CA on the client's side...).
    Error,
    /// Not done within `tls.handshake_timeout_ms`.
    Timeout,
}

impl Handshake {
    pub const ALL: [Handshake; 3] = [Handshake::Ok, Handshake::Error, Handshake::Timeout];

    pub fn as_str(self) -> &'static str {
        match self {
            Handshake::Ok => "ok",
            Handshake::Error => "error",
            Handshake::Timeout => "timeout",
        }
    }
}

/// Handles on the TLS families (cheap to clone: shared counters).
#[derive(Clone)]
pub struct TlsMetrics {
    handshakes: IntCounterVec,
    reloads: IntCounterVec,
    expiry: IntGaugeVec,
}

impl TlsMetrics {
    /// Defines the families, every result at 0. Panics only on a malformed definition (a
    /// programming error caught by the unit test), never on input.
    pub fn new() -> Self {
        let handshakes = IntCounterVec::new(
            Opts::new(
                "dyegate_tls_handshakes_total",
                "TLS handshakes on the HTTPS listeners by result: ok, error, timeout.",
            ),
            &["result"],
        )
        .unwrap_or_else(|e| panic!("dyegate_tls_handshakes_total: {e}"));
        for r in Handshake::ALL {
            handshakes.with_label_values(&[r.as_str()]);
        }
        let reloads = IntCounterVec::new(
            Opts::new(
                "dyegate_tls_certificate_reloads_total",
                "Certificate re-reads that changed something (success) or were refused, the old certificates kept (failure).",
            ),
            &["result"],
        )
        .unwrap_or_else(|e| panic!("dyegate_tls_certificate_reloads_total: {e}"));
        for r in ["success", "failure"] {
            reloads.with_label_values(&[r]);
        }
        let expiry = IntGaugeVec::new(
            Opts::new(
                "dyegate_tls_certificate_expiry_seconds",
                "Seconds until each served certificate expires (negative once expired), by its first DNS name.",
            ),
            &["name"],
        )
        .unwrap_or_else(|e| panic!("dyegate_tls_certificate_expiry_seconds: {e}"));
        TlsMetrics {
            handshakes,
            reloads,
            expiry,
        }
    }

    /// The collectors, for the metrics registry; the expiry gauge is computed from `table` at
    /// every scrape, so it counts down between reloads.
    pub fn collectors(&self, table: Arc<ArcSwap<SniTable>>) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.handshakes.clone()),
            Box::new(self.reloads.clone()),
            Box::new(Expiry {
                gauge: self.expiry.clone(),
                table,
            }),
        ]
    }

    pub fn handshake(&self, result: Handshake) {
        self.handshakes.with_label_values(&[result.as_str()]).inc();
    }

    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.with_label_values(&[result]).inc();
    }
}

impl Default for TlsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `dyegate_tls_certificate_expiry_seconds`, from the certificates served now.
struct Expiry {
    gauge: IntGaugeVec,
    table: Arc<ArcSwap<SniTable>>,
}

impl Collector for Expiry {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let now = SystemTime::now();
        self.gauge.reset();
        for c in self.table.load().certificates() {
            self.gauge
                .with_label_values(&[c.name().as_str()])
                .set(c.seconds_left(now));
        }
        self.gauge.collect()
    }
}
