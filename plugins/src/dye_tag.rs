//! Dye tags: which tag a request carries, whether its sender may set one, and what to do with it.
//!
//! The gateway reads the tag header once; this module decides, without I/O, whether that tag
//! counts (the peer is trusted, the value is a well-formed tag) and reports it as a [`DyeTag`].

use ipnet::IpNet;
use std::net::IpAddr;

/// Longest tag value accepted; longer values are treated as absent (and stripped).
pub const MAX_TAG_LEN: usize = 64;

/// Networks whose requests may carry a tag. Empty = every peer is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedSources {
    nets: Vec<IpNet>,
}

impl TrustedSources {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedSources { nets }
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether tags are only taken from some networks.
    pub fn is_restricted(&self) -> bool {
        !self.nets.is_empty()
    }

    /// Whether a peer may set a tag. An unknown peer address (e.g. a Unix socket) is trusted
    /// only when no restriction is configured.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        if self.nets.is_empty() {
            return true;
        }
        match peer {
            Some(ip) => {
                let ip = canonical(ip);
                self.nets.iter().any(|n| n.contains(&ip))
            }
            None => false,
        }
    }
}

/// IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`, as seen on dual-stack listeners) are matched as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Where the tag of a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSource {
    /// No tag header, or an empty one.
    Absent,
    /// The header was present but the peer is not trusted: the tag is ignored and stripped.
    Untrusted,
    /// The header was present but not a valid tag (too long, bad characters): ignored, stripped.
    Malformed,
    /// A usable tag.
    Given,
}

/// The tag a request carries, as far as routing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DyeTag<'a> {
    pub source: TagSource,
    pub value: Option<&'a str>,
}

impl<'a> DyeTag<'a> {
    /// Reads a tag from the raw header value.
    pub fn read(raw: Option<&'a [u8]>, peer: Option<IpAddr>, trusted: &TrustedSources) -> Self {
        let absent = DyeTag {
            source: TagSource::Absent,
            value: None,
        };
        let Some(raw) = raw else { return absent };
        let raw = trim(raw);
        if raw.is_empty() {
            return absent;
        }
        if !trusted.trusts(peer) {
            return DyeTag {
                source: TagSource::Untrusted,
                value: None,
            };
        }
        match std::str::from_utf8(raw) {
            Ok(s) if is_valid_tag(s) => DyeTag {
                source: TagSource::Given,
                value: Some(s),
            },
            _ => DyeTag {
                source: TagSource::Malformed,
                value: None,
            },
        }
    }

    /// Whether the incoming header must be removed before the request goes upstream.
    pub fn must_strip(&self) -> bool {
        matches!(self.source, TagSource::Untrusted | TagSource::Malformed)
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// A tag is 1..=64 characters of `A-Z a-z 0-9 - _ .`: safe in a header, in a W3C baggage value
/// and as a metric label.
pub fn is_valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TAG_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> TrustedSources {
        TrustedSources::new(s.iter().map(|n| n.parse().expect("cidr")).collect())
    }

    #[test]
    fn absent_and_empty() {
        let t = TrustedSources::default();
        assert_eq!(DyeTag::read(None, None, &t).source, TagSource::Absent);
        assert_eq!(
            DyeTag::read(Some(b"  "), None, &t).source,
            TagSource::Absent
        );
    }

    #[test]
    fn given_when_unrestricted() {
        let t = TrustedSources::default();
        let tag = DyeTag::read(Some(b" canary "), "1.2.3.4".parse().ok(), &t);
        assert_eq!(tag.value, Some("canary"));
        assert!(!tag.must_strip());
    }

    #[test]
    fn untrusted_peer_is_stripped() {
        let t = nets(&["10.0.0.0/8"]);
        let tag = DyeTag::read(Some(b"canary"), "127.0.0.1".parse().ok(), &t);
        assert_eq!(tag.source, TagSource::Untrusted);
        assert!(tag.must_strip());
        let tag = DyeTag::read(Some(b"canary"), "10.1.2.3".parse().ok(), &t);
        assert_eq!(tag.value, Some("canary"));
        let mapped = DyeTag::read(Some(b"canary"), "::ffff:10.1.2.3".parse().ok(), &t);
        assert_eq!(mapped.value, Some("canary"));
        assert_eq!(
            DyeTag::read(Some(b"canary"), None, &t).source,
            TagSource::Untrusted
        );
    }

    #[test]
    fn malformed_values() {
        let t = TrustedSources::default();
        for bad in [&b"a b"[..], b"\xff\xfe", b"canary,beta", &[b'a'; 65]] {
            assert_eq!(
                DyeTag::read(Some(bad), None, &t).source,
                TagSource::Malformed
            );
        }
        assert!(is_valid_tag("feat-42.v2_x"));
    }
}
