//! The one client address of a request: the peer's, or, behind trusted proxies, the rightmost
//! `X-Forwarded-For` address that is not a trusted proxy's.
//!
//! The walk goes from the right (the entry the nearest proxy appended) and stops at the first
//! untrusted address, so what a client writes into the header itself (on the left) is never
//! reached unless every proxy to its right is trusted. It is bounded whatever the header holds:
//! at most [`MAX_FORWARDED_ENTRIES`] entries, each read only when it is at most
//! [`MAX_FORWARDED_ENTRY_LEN`] bytes, and the bytes left of the last entry looked at are never
//! scanned. An entry that is no address ends the walk: the client is the last address reached,
//! a trusted proxy that forwarded something it should not have (only a trusted hop can put an
//! entry there).

use super::Forwarding;
use crate::dye_tag::canonical;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Most `X-Forwarded-For` entries looked at, from the right.
pub const MAX_FORWARDED_ENTRIES: usize = 32;
/// Longest entry read as an address (`[ffff:...:ffff%zone]:65535` fits); a longer one is not an
/// address.
pub const MAX_FORWARDED_ENTRY_LEN: usize = 64;

/// A request's client address. IPv4-mapped IPv6 addresses are IPv4 (one client, whichever
/// listener family it came in on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr {
    pub ip: IpAddr,
    /// The connection's source port when the address is the peer's (TCP or PROXY protocol);
    /// `None` when it was read from `X-Forwarded-For`.
    pub port: Option<u16>,
}

impl fmt::Display for ClientAddr {
    /// `IP:PORT` (`[IPv6]:PORT`) for a peer, `IP` for an address read from `X-Forwarded-For`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => SocketAddr::new(self.ip, port).fmt(f),
            None => self.ip.fmt(f),
        }
    }
}

impl Forwarding {
    /// The client of a request from `peer` (the TCP peer, or the PROXY protocol source) whose
    /// `X-Forwarded-For` header lines are `xff_last_first`, the last line first (as
    /// `HeaderMap::get_all(..).iter().rev()` gives them). `None` without a peer address (a Unix
    /// socket).
    pub fn client<'a, I>(&self, peer: Option<SocketAddr>, xff_last_first: I) -> Option<ClientAddr>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let peer = peer?;
        let mut client = ClientAddr {
            ip: canonical(peer.ip()),
            port: Some(peer.port()),
        };
        if !self.trusts(Some(client.ip)) {
            return Some(client);
        }
        let mut looked_at = 0;
        for line in xff_last_first {
            for entry in line.rsplit(|b| *b == b',') {
                let entry = entry.trim_ascii();
                if entry.is_empty() {
                    continue;
                }
                looked_at += 1;
                if looked_at > MAX_FORWARDED_ENTRIES {
                    return Some(client);
                }
                let Some(ip) = address_of(entry) else {
                    return Some(client);
                };
                client = ClientAddr {
                    ip: canonical(ip),
                    port: None,
                };
                if !self.trusts(Some(client.ip)) {
                    return Some(client);
                }
            }
        }
        Some(client)
    }
}

/// The address of one `X-Forwarded-For` entry: `IP`, `IPv4:PORT`, `[IPv6]` or `[IPv6]:PORT`.
fn address_of(entry: &[u8]) -> Option<IpAddr> {
    if entry.len() > MAX_FORWARDED_ENTRY_LEN {
        return None;
    }
    let s = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let bracketed = s.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarded::HeaderSet;
    use proptest::prelude::*;

    fn policy(trusted: &[&str]) -> Forwarding {
        Forwarding::new(
            trusted.iter().map(|n| n.parse().expect("cidr")).collect(),
            HeaderSet::default(),
        )
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().expect("socket address"))
    }

    /// The client as text, for lines given first to last.
    fn client(p: &Forwarding, from: &str, lines: &[&str]) -> String {
        let last_first = lines.iter().rev().map(|l| l.as_bytes());
        p.client(peer(from), last_first)
            .map_or("none".into(), |c| c.to_string())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let p = policy(&[]);
        assert_eq!(client(&p, "10.0.0.1:5000", &[]), "10.0.0.1:5000");
        assert_eq!(
            client(&p, "10.0.0.1:5000", &["1.2.3.4, 5.6.7.8"]),
            "10.0.0.1:5000"
        );
        let p = policy(&["10.0.0.0/8"]);
        assert_eq!(client(&p, "192.0.2.9:1", &["10.0.0.7"]), "192.0.2.9:1");
        assert_eq!(p.client(None, [&b"1.2.3.4"[..]]), None);
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_entry() {
        let p = policy(&["10.0.0.0/8", "2001:db8::/32"]);
        // A client that forged an entry: the proxy appended its real address after it.
        assert_eq!(
            client(&p, "10.0.0.1:80", &["6.6.6.6, 192.0.2.1"]),
            "192.0.2.1"
        );
        // Two trusted hops; lines split across headers; spaces and empty entries tolerated.
        assert_eq!(
            client(
                &p,
                "10.0.0.1:80",
                &["198.51.100.7 ,, 10.9.9.9", " 10.1.1.1 "]
            ),
            "198.51.100.7"
        );
        // Ports and brackets as some proxies write them.
        assert_eq!(
            client(&p, "10.0.0.1:80", &["[2001:db9::5]:443"]),
            "2001:db9::5"
        );
        assert_eq!(client(&p, "10.0.0.1:80", &["192.0.2.1:8080"]), "192.0.2.1");
        assert_eq!(client(&p, "10.0.0.1:80", &["[2001:db9::6]"]), "2001:db9::6");
        // A trusted peer without the header is the client itself.
        assert_eq!(client(&p, "10.0.0.1:80", &[]), "10.0.0.1:80");
        // Everyone trusted: the leftmost address.
        assert_eq!(
            client(&p, "10.0.0.1:80", &["10.2.2.2, 10.3.3.3"]),
            "10.2.2.2"
        );
        // IPv4-mapped peers and entries are IPv4.
        assert_eq!(
            client(&p, "[::ffff:10.0.0.1]:80", &["::ffff:192.0.2.3"]),
            "192.0.2.3"
        );
        assert_eq!(
            client(&policy(&[]), "[::ffff:192.0.2.4]:80", &[]),
            "192.0.2.4:80"
        );
    }

    #[test]
    fn garbage_ends_the_walk_at_the_last_address_reached() {
        let p = policy(&["10.0.0.0/8"]);
        assert_eq!(client(&p, "10.0.0.1:80", &["unknown"]), "10.0.0.1:80");
        assert_eq!(
            client(&p, "10.0.0.1:80", &["192.0.2.1, _hidden, 10.0.0.2"]),
            "10.0.0.2"
        );
        let long = format!("{}1.2.3.4", "9".repeat(100));
        assert_eq!(client(&p, "10.0.0.1:80", &[&long]), "10.0.0.1:80");
        assert_eq!(client(&p, "10.0.0.1:80", &["\u{e9}"]), "10.0.0.1:80");
    }

    #[test]
    fn the_walk_is_bounded() {
        let p = policy(&["10.0.0.0/8"]);
        let many = vec!["10.0.0.9"; 100].join(",");
        let line = format!("192.0.2.1,{many}");
        // Past 32 trusted entries the walk stops (at a trusted address: only trusted hops can
        // write that many).
        assert_eq!(client(&p, "10.0.0.1:80", &[&line]), "10.0.0.9");
        let line = format!("{}, 192.0.2.1", "x".repeat(60_000));
        assert_eq!(client(&p, "10.0.0.1:80", &[&line]), "192.0.2.1");
    }

    proptest! {
        /// Whatever the header holds, the client is the peer or an address from the header,
        /// and an untrusted peer is always its own client.
        #[test]
        fn any_header_gives_the_peer_or_one_of_its_addresses(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let p = policy(&["10.0.0.0/8"]);
            let c = p.client(peer("10.0.0.1:80"), [line.as_slice()]).expect("a peer");
            prop_assert!(c.port == Some(80) || c.port.is_none());
            let untrusted = p.client(peer("192.0.2.1:80"), [line.as_slice()]).expect("a peer");
            prop_assert_eq!(untrusted.to_string(), "192.0.2.1:80");
        }
    }
}
