//! `dyegate_downstream_rejected_total{listener,reason}` and
//! `dyegate_downstream_connections{listener}`: the proxy listeners (`proxy`, HTTPS included) and
//! the admin listener (`admin`) in the same two families.

use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// Why a downstream connection was closed without a request being served (or, `SlowBody`,
/// without its request being read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The request head did not arrive within `header_read_timeout_ms` (a new connection that
    /// sends nothing included).
    SlowHeaders,
    /// The request head was larger than `max_request_header_bytes` (answered 431).
    HeaderTooLarge,
    /// `max_connections` were open: closed at accept.
    MaxConnections,
    /// The request body did not arrive within `admin.limits.body_read_timeout_ms` (answered
    /// 408); the admin listener only.
    SlowBody,
    /// A PROXY protocol listener's connection did not start with a valid header (none, a
    /// malformed one, one past 4 KiB): closed.
    ProxyProtocol,
    /// A PROXY protocol listener's peer is not in its `proxy_protocol_sources`: closed at accept.
    ProxyProtocolSource,
}

impl Rejected {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::SlowHeaders => "slow_headers",
            Rejected::HeaderTooLarge => "header_too_large",
            Rejected::MaxConnections => "max_connections",
            Rejected::SlowBody => "slow_body",
            Rejected::ProxyProtocol => "proxy_protocol",
            Rejected::ProxyProtocolSource => "proxy_protocol_source",
        }
    }
}

/// Which listeners a handle counts for: the `listener` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Proxy,
    Admin,
}

impl Listener {
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Proxy => "proxy",
            Listener::Admin => "admin",
        }
    }

    /// The reasons this listener can close a connection for (their series start at 0).
    pub fn reasons(self) -> &'static [Rejected] {
        match self {
            Listener::Proxy => &[
                Rejected::SlowHeaders,
                Rejected::HeaderTooLarge,
                Rejected::MaxConnections,
                Rejected::ProxyProtocol,
                Rejected::ProxyProtocolSource,
            ],
            Listener::Admin => &[
                Rejected::SlowHeaders,
                Rejected::HeaderTooLarge,
                Rejected::MaxConnections,
                Rejected::SlowBody,
            ],
        }
    }
}

/// One listener's handles on the two families (cheap to clone: shared counters). Every series
/// of both listeners exists from the start.
#[derive(Clone)]
pub struct DownstreamMetrics {
    rejected_family: IntCounterVec,
    open_family: IntGaugeVec,
    listener: Listener,
    open: IntGauge,
}

impl DownstreamMetrics {
    /// Defines both families, every series at 0, and returns the proxy listeners' handle.
    /// Panics only on a malformed definition (a programming error caught by the unit test),
    /// never on input.
    pub fn new() -> Self {
        let rejected_family = IntCounterVec::new(
            Opts::new(
                "dyegate_downstream_rejected_total",
                "Downstream connections closed by a limit, by listener (proxy, admin): slow_headers, header_too_large, max_connections, proxy_protocol, proxy_protocol_source (proxy), slow_body (admin).",
            ),
            &["listener", "reason"],
        )
        .unwrap_or_else(|e| panic!("dyegate_downstream_rejected_total: {e}"));
        let open_family = IntGaugeVec::new(
            Opts::new(
                "dyegate_downstream_connections",
                "Downstream connections open, by listener (proxy, admin).",
            ),
            &["listener"],
        )
        .unwrap_or_else(|e| panic!("dyegate_downstream_connections: {e}"));
        for listener in [Listener::Proxy, Listener::Admin] {
            for r in listener.reasons() {
                rejected_family.with_label_values(&[listener.as_str(), r.as_str()]);
            }
            open_family.with_label_values(&[listener.as_str()]);
        }
        let open = open_family.with_label_values(&[Listener::Proxy.as_str()]);
        DownstreamMetrics {
            rejected_family,
            open_family,
            listener: Listener::Proxy,
            open,
        }
    }

    /// The handle of `listener` on the same families.
    pub fn for_listener(&self, listener: Listener) -> Self {
        DownstreamMetrics {
            rejected_family: self.rejected_family.clone(),
            open_family: self.open_family.clone(),
            listener,
            open: self.open_family.with_label_values(&[listener.as_str()]),
        }
    }

    /// The collectors, for the metrics registry (once, from any handle).
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.rejected_family.clone()),
            Box::new(self.open_family.clone()),
        ]
    }

    pub fn rejected(&self, reason: Rejected) {
        debug_assert!(
            self.listener.reasons().contains(&reason),
            "{reason:?} on the {:?} listener",
            self.listener
        );
        self.counter(reason).inc();
    }

    fn counter(&self, reason: Rejected) -> IntCounter {
        self.rejected_family
            .with_label_values(&[self.listener.as_str(), reason.as_str()])
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

    /// (listener, reason or "", value) of every series, sorted.
    fn values(m: &DownstreamMetrics) -> Vec<(String, String, f64)> {
        let mut out = Vec::new();
        for family in m.collectors().iter().flat_map(|c| c.collect()) {
            for metric in family.get_metric() {
                let label = |name: &str| {
                    (metric.get_label().iter())
                        .find(|l| l.name() == name)
                        .map_or_else(String::new, |l| l.value().to_string())
                };
                let value = if family.name() == "dyegate_downstream_connections" {
                    metric.get_gauge().get_value()
                } else {
                    metric.get_counter().get_value()
                };
                out.push((label("listener"), label("reason"), value));
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    #[test]
    fn every_series_starts_at_zero_and_each_listener_counts_its_own() {
        let proxy = DownstreamMetrics::new();
        let admin = proxy.for_listener(Listener::Admin);
        proxy.rejected(Rejected::HeaderTooLarge);
        admin.rejected(Rejected::SlowBody);
        admin.rejected(Rejected::MaxConnections);
        admin.set_open(3);
        let row = |l: &str, r: &str, v: f64| (l.to_string(), r.to_string(), v);
        assert_eq!(
            values(&proxy),
            vec![
                row("admin", "", 3.0),
                row("admin", "header_too_large", 0.0),
                row("admin", "max_connections", 1.0),
                row("admin", "slow_body", 1.0),
                row("admin", "slow_headers", 0.0),
                row("proxy", "", 0.0),
                row("proxy", "header_too_large", 1.0),
                row("proxy", "max_connections", 0.0),
                row("proxy", "proxy_protocol", 0.0),
                row("proxy", "proxy_protocol_source", 0.0),
                row("proxy", "slow_headers", 0.0),
            ]
        );
    }
}
