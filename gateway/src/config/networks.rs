//! IP networks as the config files write them: `10.0.0.0/8`, or one address (`127.0.0.1`,
//! `::1`), for every `trusted_sources`-like list.

use super::error::Issue;
use ipnet::IpNet;
use std::net::IpAddr;

/// One network; `None` when `s` is neither a CIDR network nor an address.
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Every network of `list` (at field `path`); each one that does not parse is an issue at
/// `path[i]`, naming `example` as a network that would do.
pub fn networks(list: &[String], path: &str, example: &str, issues: &mut Vec<Issue>) -> Vec<IpNet> {
    let mut out = Vec::with_capacity(list.len());
    for (i, net) in list.iter().enumerate() {
        match parse_net(net) {
            Some(n) => out.push(n),
            None => issues.push(Issue::new(
                format!("{path}[{i}]"),
                format!("found {net:?}, expected an IP network such as {example} or an IP address"),
            )),
        }
    }
    out
}
