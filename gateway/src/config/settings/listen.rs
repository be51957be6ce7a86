//! gateway.yaml's listener entries (`listen`, `tls.listen`): `"IP:PORT"`, or
//! `{ addr: "IP:PORT", proxy_protocol: true, proxy_protocol_sources: [NETWORKS] }` for a
//! listener behind a layer-4 balancer that sends a PROXY protocol header first
//! ([`crate::downstream::proxy_protocol`]).

use crate::config::error::Issue;
use crate::config::networks::networks;
use ipnet::IpNet;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;

/// One listener as written: `"IP:PORT"` or `{ addr, proxy_protocol, proxy_protocol_sources }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenConfig {
    pub addr: String,
    /// Every connection starts with a PROXY protocol header (v1 or v2) [false].
    pub proxy_protocol: bool,
    /// Peers the header is taken from; other peers are refused at accept. Absent: any peer.
    pub proxy_protocol_sources: Option<Vec<String>>,
}

impl ListenConfig {
    /// A plain listener on `addr`.
    pub fn plain(addr: &str) -> Self {
        ListenConfig {
            addr: addr.to_string(),
            proxy_protocol: false,
            proxy_protocol_sources: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenFields {
    addr: String,
    #[serde(default)]
    proxy_protocol: bool,
    #[serde(default)]
    proxy_protocol_sources: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for ListenConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ListenConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an address \"IP:PORT\" or { addr: \"IP:PORT\", proxy_protocol: true }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ListenConfig, E> {
                Ok(ListenConfig::plain(s))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ListenConfig, A::Error> {
                let l = ListenFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ListenConfig {
                    addr: l.addr,
                    proxy_protocol: l.proxy_protocol,
                    proxy_protocol_sources: l.proxy_protocol_sources,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A listener whose connections start with a PROXY protocol header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocolListener {
    pub addr: SocketAddr,
    /// `proxy_protocol_sources`; `None`: any peer may send the header.
    pub sources: Option<Vec<IpNet>>,
}

/// The addresses of `entries` (at field `path`, e.g. `tls.listen`) with their index, and the
/// PROXY protocol listeners among them appended to `proxied`. An entry whose address does not
/// parse is an issue and left out.
pub fn listen_settings(
    entries: &[ListenConfig],
    path: &str,
    example: &str,
    proxied: &mut Vec<ProxyProtocolListener>,
    issues: &mut Vec<Issue>,
) -> Vec<(usize, SocketAddr)> {
    let mut out = Vec::with_capacity(entries.len());
    for (i, l) in entries.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let plain = !l.proxy_protocol && l.proxy_protocol_sources.is_none();
        let addr = match l.addr.trim().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                issues.push(Issue::new(
                    if plain { at } else { format!("{at}.addr") },
                    format!(
                        "found {:?}, expected an IP:PORT listen address such as {example}",
                        l.addr
                    ),
                ));
                continue;
            }
        };
        out.push((i, addr));
        let sources = match &l.proxy_protocol_sources {
            None => None,
            Some(_) if !l.proxy_protocol => {
                issues.push(Issue::new(
                    format!("{at}.proxy_protocol_sources"),
                    "found proxy_protocol_sources on a listener without proxy_protocol: true, expected proxy_protocol: true beside it",
                ));
                continue;
            }
            Some(list) if list.is_empty() => {
                issues.push(Issue::new(
                    format!("{at}.proxy_protocol_sources"),
                    "found an empty list, expected at least one network (omit the field to take the header from any peer)",
                ));
                continue;
            }
            Some(list) => Some(networks(
                list,
                &format!("{at}.proxy_protocol_sources"),
                "10.0.0.0/8",
                issues,
            )),
        };
        if l.proxy_protocol {
            proxied.push(ProxyProtocolListener { addr, sources });
        }
    }
    out
}
