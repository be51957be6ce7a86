//! The one place DNS is asked: A and AAAA lookups through `hickory-resolver` on tokio, with the
//! nameservers of gateway.yaml `dns.nameservers` (any port, UDP then TCP) or those of
//! /etc/resolv.conf (with /etc/hosts first). hickory's own cache is off: when to ask again is
//! decided by `schedule.rs`, from the answer's TTL and `dns.interval_ms`.

use super::diff::normalized;
use crate::config::DnsSettings;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::TokioResolver;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long one query waits for a nameserver's answer (each of [`ATTEMPTS`]).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries of a query before the lookup fails.
const ATTEMPTS: usize = 2;

/// A name's answer: its addresses (sorted, never empty) and how long they may be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub addrs: Vec<IpAddr>,
    pub ttl: Duration,
}

/// A resolver of host names. Made and used on one tokio runtime (its queries run as tasks
/// there).
pub struct Resolver {
    inner: Result<TokioResolver, String>,
}

impl Resolver {
    /// The resolver `settings` describe. When the system's configuration cannot be read, every
    /// lookup fails with that reason (shown where failures are).
    pub fn new(settings: &DnsSettings) -> Resolver {
        Resolver {
            inner: build(settings),
        }
    }

    /// Every A and AAAA address of `host`, or why there is none (a message for logs and
    /// `/upstreams`).
    pub async fn lookup(&self, host: &str) -> Result<Answer, String> {
        let resolver = self.inner.as_ref().map_err(Clone::clone)?;
        let started = Instant::now();
        let lookup = resolver.lookup_ip(host).await.map_err(|e| describe(&e))?;
        let addrs = normalized(lookup.iter().collect());
        if addrs.is_empty() {
            return Err("no A or AAAA record".into());
        }
        let ttl = lookup
            .valid_until()
            .saturating_duration_since(started.max(Instant::now()));
        Ok(Answer { addrs, ttl })
    }
}

fn build(settings: &DnsSettings) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match &settings.nameservers {
        Some(servers) => {
            let servers = (servers.iter())
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            let config = ResolverConfig::from_parts(None, Vec::new(), servers);
            let mut b = TokioResolver::builder_with_config(config, provider);
            // The nameservers named are the ones asked: /etc/hosts is not read.
            b.options_mut().use_hosts_file = ResolveHosts::Never;
            b
        }
        None => TokioResolver::builder(provider)
            .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
    };
    let o = builder.options_mut();
    o.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    o.cache_size = 0;
    o.timeout = QUERY_TIMEOUT;
    o.attempts = ATTEMPTS;
    o.try_tcp_on_error = true;
    builder
        .build()
        .map_err(|e| format!("cannot set up the DNS resolver: {e}"))
}

/// A lookup's failure as operators read it.
fn describe(e: &NetError) -> String {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(none)) => match none.response_code {
            ResponseCode::NXDomain => "NXDOMAIN: the name does not exist".into(),
            ResponseCode::NoError => "no A or AAAA record".into(),
            code => format!("the nameserver answered {}", rcode(code)),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => {
            format!("the nameserver answered {}", rcode(*code))
        }
        NetError::Timeout => format!(
            "no answer from the nameserver within {} s ({ATTEMPTS} tries)",
            QUERY_TIMEOUT.as_secs()
        ),
        NetError::Io(io) => format!("cannot reach the nameserver: {io}"),
        other => other.to_string(),
    }
}

/// `SERVFAIL`, `REFUSED`, `NXDOMAIN` ...
fn rcode(code: ResponseCode) -> String {
    format!("{code:?}").to_ascii_uppercase()
}
