//! `dyegate_downstream_rejected_total{reason}` and `dyegate_downstream_connections`.

use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGauge, Opts};

/// Why a downstream connection was closed without a request being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The request head did not arrive within `limits.header_read_timeout_ms` (a new
    /// connection that sends nothing included).
    SlowHeaders,
    /// The request head was larger than `limits.max_request_header_bytes` (answered 431).
    HeaderTooLarge,
    /// `limits.max_connections` were open: closed at accept.
    MaxConnections,
    /// A PROXY protocol listener's connection did not start with a valid header (none, a
    /// malformed one, one past 4 KiB): closed.
    ProxyProtocol,
    /// A PROXY protocol listener's peer is not in its `proxy_protocol_sources`: closed at accept.
    ProxyProtocolSource,
}

impl Rejected {
    pub const ALL: [Rejected; 5] = [
        Rejected::SlowHeaders,
        Rejected::HeaderTooLarge,
        Rejected::MaxConnections,
        Rejected::ProxyProtocol,
        Rejected::ProxyProtocolSource,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::SlowHeaders => "slow_headers",
            Rejected::HeaderTooLarge => "header_too_large",
            Rejected::MaxConnections => "max_connections",
            Rejected::ProxyProtocol => "proxy_protocol",
            Rejected::ProxyProtocolSource => "proxy_protocol_source",
        }
    }
}

/// Handles on the two families (cheap to clone: shared counters).
#[derive(Clone)]
pub struct DownstreamMetrics {
    rejected: IntCounterVec,
    open: IntGauge,
}

impl DownstreamMetrics {
    /// Defines both families, every reason at 0. Panics only on a malformed definition (a
    /// programming error caught by the unit test), never on input.
    pub fn new() -> Self {
        let rejected = IntCounterVec::new(
            Opts::new(
                "dyegate_downstream_rejected_total",
                "Downstream connections closed by a limit: slow_headers, header_too_large, max_connections, proxy_protocol, proxy_protocol_source.",
            ),
            &["reason"],
        )
        .unwrap_or_else(|e| panic!("dyegate_downstream_rejected_total: {e}"));
        for r in Rejected::ALL {
            rejected.with_label_values(&[r.as_str()]);
        }
        let open = IntGauge::new(
            "dyegate_downstream_connections",
            "Downstream connections open on the proxy listeners.",
        )
        .unwrap_or_else(|e| panic!("dyegate_downstream_connections: {e}"));
        DownstreamMetrics { rejected, open }
    }

    /// The collectors, for the metrics registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![Box::new(self.rejected.clone()), Box::new(self.open.clone())]
    }

    pub fn rejected(&self, reason: Rejected) {
        self.rejected.with_label_values(&[reason.as_str()]).inc();
    }

    pub fn set_open(&self, n: usize) {
        self.open.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

impl Default for DownstreamMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_starts_at_zero() {
        let m = DownstreamMetrics::new();
        m.rejected(Rejected::HeaderTooLarge);
        let families: Vec<_> = m.collectors().iter().flat_map(|c| c.collect()).collect();
        let rejected = &families[0];
        assert_eq!(rejected.name(), "dyegate_downstream_rejected_total");
        let mut values: Vec<(String, f64)> = rejected
            .get_metric()
            .iter()
            .map(|m| {
                (
                    m.get_label()[0].value().to_string(),
                    m.get_counter().get_value(),
                )
            })
            .collect();
        values.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            values,
            vec![
                ("header_too_large".to_string(), 1.0),
                ("max_connections".to_string(), 0.0),
                ("proxy_protocol".to_string(), 0.0),
                ("proxy_protocol_source".to_string(), 0.0),
                ("slow_headers".to_string(), 0.0),
            ]
        );
    }
}
