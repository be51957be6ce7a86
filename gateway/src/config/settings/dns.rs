//! gateway.yaml's `dns:` how the DNS names of upstream targets (`NAME:PORT` in routes.yaml) are
//! resolved: how often, and by which nameservers. Checked into [`DnsSettings`].

use crate::config::error::Issue;
use crate::config::range::Bound;
use schemars::JsonSchema;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// `dns.interval_ms`: from a tenth of a second to an hour.
pub const INTERVAL_BOUND: Bound<u64> = Bound::millis(100, 3_600_000);

/// `dns:` as written in gateway.yaml (defaults in the field docs).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Milliseconds between two lookups of a name [5000]. A record's TTL, where shorter, does
    /// not make dyegate ask more often; where longer, dyegate waits for it (at most 300 s).
    #[serde(default = "default_interval_ms")]
    #[schemars(range(min = INTERVAL_BOUND.min, max = INTERVAL_BOUND.max))]
    pub interval_ms: u64,
    /// Nameservers to ask, `IP` or `IP:PORT` (port 53 by default), in order; absent = those of
    /// /etc/resolv.conf, with /etc/hosts first.
    #[serde(default)]
    pub nameservers: Option<Vec<String>>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            interval_ms: default_interval_ms(),
            nameservers: None,
        }
    }
}

fn default_interval_ms() -> u64 {
    5_000
}

/// `dns:`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Shortest time between two lookups of a name.
    pub interval: Duration,
    /// `None`: the system's (/etc/resolv.conf, /etc/hosts).
    pub nameservers: Option<Vec<SocketAddr>>,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            interval: Duration::from_millis(default_interval_ms()),
            nameservers: None,
        }
    }
}

/// The settings; every bad field is an issue.
pub fn dns_settings(cfg: &DnsConfig, issues: &mut Vec<Issue>) -> DnsSettings {
    INTERVAL_BOUND.check("dns.interval_ms", cfg.interval_ms, issues);
    let nameservers = cfg.nameservers.as_ref().map(|list| {
        if list.is_empty() {
            issues.push(Issue::new(
                "dns.nameservers",
                "found an empty list, expected at least one nameserver (or no `nameservers` for those of /etc/resolv.conf)",
            ));
        }
        (list.iter().enumerate())
            .filter_map(|(i, s)| match parse_nameserver(s) {
                Some(a) => Some(a),
                None => {
                    issues.push(Issue::new(
                        format!("dns.nameservers[{i}]"),
                        format!(
                            "found {s:?}, expected an IP address with an optional port such as 10.0.0.2 or 10.0.0.2:53 or [fd00::2]:53"
                        ),
                    ));
                    None
                }
            })
            .collect()
    });
    DnsSettings {
        interval: Duration::from_millis(
            cfg.interval_ms
                .clamp(INTERVAL_BOUND.min, INTERVAL_BOUND.max),
        ),
        nameservers,
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, or an IP alone (port 53); port 0 is refused.
fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    let addr = match s.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => SocketAddr::new(s.parse::<IpAddr>().ok()?, 53),
    };
    (addr.port() != 0).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(interval_ms: u64, nameservers: Option<&[&str]>) -> (DnsSettings, Vec<Issue>) {
        let cfg = DnsConfig {
            interval_ms,
            nameservers: nameservers.map(|l| l.iter().map(|s| s.to_string()).collect()),
        };
        let mut issues = Vec::new();
        (dns_settings(&cfg, &mut issues), issues)
    }

    #[test]
    fn nameservers_with_and_without_ports() {
        let (s, issues) = settings(
            5000,
            Some(&["10.0.0.2:53", "10.0.0.3", "[::1]:5353", "::1"]),
        );
        assert!(issues.is_empty(), "{issues:?}");
        let want: Vec<SocketAddr> = ["10.0.0.2:53", "10.0.0.3:53", "[::1]:5353", "[::1]:53"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        assert_eq!(s.nameservers, Some(want));
        assert_eq!(s.interval, Duration::from_secs(5));
        assert_eq!(settings(5000, None).0.nameservers, None);
    }

    #[test]
    fn bad_values_name_the_field() {
        let (_, issues) = settings(0, Some(&["dns.local", "10.0.0.2:0"]));
        let got: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        assert_eq!(
            got,
            [
                "dns.interval_ms: found 0, expected a whole number of milliseconds from 100 to 3600000",
                "dns.nameservers[0]: found \"dns.local\", expected an IP address with an optional port such as 10.0.0.2 or 10.0.0.2:53 or [fd00::2]:53",
                "dns.nameservers[1]: found \"10.0.0.2:0\", expected an IP address with an optional port such as 10.0.0.2 or 10.0.0.2:53 or [fd00::2]:53",
            ]
        );
        let (_, issues) = settings(5000, Some(&[]));
        assert_eq!(issues[0].path, "dns.nameservers");
    }
}
