//! A PROXY protocol header (HAProxy's spec, v1 text and v2 binary) at the start of a
//! connection's bytes, parsed with the `ppp` crate: complete, incomplete, or not one.
//!
//! A header is at most [`MAX_HEADER_BYTES`]: a v1 header is at most 107 bytes; a v2 header
//! announces its length in its first 16 bytes, and one announcing more is refused at once,
//! before its body is read. The source a header names is the client's address; a header that
//! names none (v2 `LOCAL`, a balancer's own health check; v1 `UNKNOWN`; v2 `UNSPEC` or a Unix
//! socket) leaves the connection's own peer as the client, as the spec asks.

use ppp::v2::{Addresses as V2Addresses, Command};
use ppp::{v1, v2, HeaderResult, PartialResult};
use std::net::SocketAddr;

/// The fixed part of a v2 header: signature, version and command, family, length.
const V2_FIXED: usize = 16;

/// Longest header taken, TLVs included (AWS, GCP and Azure balancers send well under 1 KiB).
pub const MAX_HEADER_BYTES: usize = 4096;

/// What the first bytes of a connection hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The start of a header: read more.
    Incomplete,
    /// A whole header of `len` bytes (what follows is the connection's own data). `source`: the
    /// client it names, `None` when it names none.
    Header {
        len: usize,
        source: Option<SocketAddr>,
    },
    /// Not a PROXY protocol header, a malformed one, or one longer than [`MAX_HEADER_BYTES`].
    Invalid,
}

/// The longest v1 header, its CRLF included.
const V1_MAX: usize = 107;

/// Parses the bytes read so far.
pub fn parse(buf: &[u8]) -> Parsed {
    // A v1 header is parsed once its line has ended: `ppp` reads a line cut after a space as a
    // bad one.
    let v1_prefix = b"PROXY ";
    if buf.starts_with(v1_prefix) || v1_prefix.starts_with(buf) {
        let line = &buf[..buf.len().min(V1_MAX)];
        return match line.iter().position(|b| *b == b'\n') {
            Some(end) => header(HeaderResult::parse(&line[..=end])),
            None if buf.len() >= V1_MAX => Parsed::Invalid,
            None => Parsed::Incomplete,
        };
    }
    header(HeaderResult::parse(buf))
}

/// What `ppp` made of the bytes.
fn header(parsed: HeaderResult<'_>) -> Parsed {
    if let HeaderResult::V2(Err(v2::ParseError::Partial(_, body))) = parsed {
        if V2_FIXED + body > MAX_HEADER_BYTES {
            return Parsed::Invalid;
        }
    }
    if parsed.is_incomplete() {
        // Never past MAX_HEADER_BYTES: a v2 header announcing more is refused above, and the
        // reader stops there.
        return Parsed::Incomplete;
    }
    match parsed {
        HeaderResult::V1(Ok(h)) => Parsed::Header {
            len: h.header.len(),
            source: match h.addresses {
                v1::Addresses::Tcp4(a) => Some((a.source_address, a.source_port).into()),
                v1::Addresses::Tcp6(a) => Some((a.source_address, a.source_port).into()),
                v1::Addresses::Unknown => None,
            },
        },
        HeaderResult::V2(Ok(h)) if h.header.len() <= MAX_HEADER_BYTES => Parsed::Header {
            len: h.header.len(),
            source: match (h.command, h.addresses) {
                (Command::Local, _) => None,
                (Command::Proxy, V2Addresses::IPv4(a)) => {
                    Some((a.source_address, a.source_port).into())
                }
                (Command::Proxy, V2Addresses::IPv6(a)) => {
                    Some((a.source_address, a.source_port).into())
                }
                (Command::Proxy, V2Addresses::Unix(_) | V2Addresses::Unspecified) => None,
            },
        },
        _ => Parsed::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

    /// A v2 header: version/command byte, family/protocol byte, then `body`.
    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    fn header(len: usize, source: &str) -> Parsed {
        Parsed::Header {
            len,
            source: Some(source.parse().expect("socket address")),
        }
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let h = b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(parse(h), header(45, "192.0.2.1:51000"));
        let h = b"PROXY TCP6 2001:db8::1 2001:db8::2 51000 443\r\n\x16\x03\x01";
        assert_eq!(parse(h), header(46, "[2001:db8::1]:51000"));
        let h = b"PROXY UNKNOWN\r\nGET";
        assert_eq!(
            parse(h),
            Parsed::Header {
                len: 15,
                source: None
            }
        );
        let h = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert_eq!(
            parse(h),
            Parsed::Header {
                len: h.len(),
                source: None
            }
        );
    }

    #[test]
    fn v1_byte_by_byte_is_incomplete_until_its_line_ends() {
        let h = b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n";
        for n in 1..h.len() {
            assert_eq!(parse(&h[..n]), Parsed::Incomplete, "{:?}", &h[..n]);
        }
        assert_eq!(parse(h), header(h.len(), "192.0.2.1:51000"));
    }

    #[test]
    fn v2_ipv4_ipv6_local_unspec_unix_and_tlvs() {
        let ipv4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xc7, 0x38, 1, 187];
        let h = v2(1, 0x11, &ipv4);
        assert_eq!(parse(&h), header(28, "192.0.2.1:51000"));
        let mut ipv6 = Vec::new();
        ipv6.extend_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .expect("v6")
                .octets(),
        );
        ipv6.extend_from_slice(
            &"2001:db8::2"
                .parse::<std::net::Ipv6Addr>()
                .expect("v6")
                .octets(),
        );
        ipv6.extend_from_slice(&[0xc7, 0x38, 1, 187]);
        let mut h = v2(1, 0x21, &ipv6);
        let len = h.len();
        h.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(parse(&h), header(len, "[2001:db8::1]:51000"));
        // LOCAL (a health check of the balancer itself): no source, whatever the body holds.
        assert_eq!(
            parse(&v2(0, 0x11, &ipv4)),
            Parsed::Header {
                len: 28,
                source: None
            }
        );
        assert_eq!(
            parse(&v2(0, 0x00, &[])),
            Parsed::Header {
                len: 16,
                source: None
            }
        );
        // PROXY over an unspecified family or a Unix socket: no source either.
        assert_eq!(
            parse(&v2(1, 0x00, &[])),
            Parsed::Header {
                len: 16,
                source: None
            }
        );
        assert_eq!(
            parse(&v2(1, 0x31, &[0; 216])),
            Parsed::Header {
                len: 232,
                source: None
            }
        );
        // TLVs (here a NOOP and an AWS-like custom one) are skipped over.
        let mut body = ipv4.to_vec();
        body.extend_from_slice(&[0x04, 0, 2, 0, 0, 0xea, 0, 4, b'v', b'p', b'c', b'e']);
        assert_eq!(
            parse(&v2(1, 0x11, &body)),
            header(16 + body.len(), "192.0.2.1:51000")
        );
    }

    #[test]
    fn v2_is_incomplete_until_its_announced_length() {
        let h = v2(1, 0x11, &[192, 0, 2, 1, 198, 51, 100, 2, 0, 80, 0, 81]);
        for n in 1..h.len() {
            assert_eq!(parse(&h[..n]), Parsed::Incomplete, "{n}");
        }
    }

    #[test]
    fn anything_else_is_invalid() {
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00",
            b"PROXY TCP4 192.0.2.1 nowhere 1 2\r\n",
            b"PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n",
            b"PROXY TCP9 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"PROXYTCP4",
            b"\r\n\r\n\0\r\nQUIT\nXXXXXXXX",
        ] {
            assert_eq!(parse(bad), Parsed::Invalid, "{bad:?}");
        }
        // A v1 line that never ends, and a v2 header announcing more than the limit.
        let endless = format!("PROXY TCP4 {}", "1".repeat(200));
        assert_eq!(parse(endless.as_bytes()), Parsed::Invalid);
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&huge), Parsed::Invalid);
        // Version 1 of the binary form, and a bad command.
        let mut v = v2(1, 0x11, &[0; 12]);
        v[12] = 0x11;
        assert_eq!(parse(&v), Parsed::Invalid);
        v[12] = 0x2f;
        assert_eq!(parse(&v), Parsed::Invalid);
    }
}
