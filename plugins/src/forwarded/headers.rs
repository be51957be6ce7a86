//! The forwarding headers of the upstream request.
//!
//! gateway.yaml `forwarded.headers` picks which ones the gateway writes: `x-forwarded`
//! (`X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`), `forwarded` (RFC 7239:
//! `for=...;proto=...;host=...`) and `x-real-ip` (the one client address). For a peer that is
//! not a trusted proxy, every one of the five headers is written from scratch or removed: what
//! such a peer sent is never passed on. A trusted proxy's headers are extended: its
//! `X-Forwarded-For` and `Forwarded` get this hop appended, its `X-Forwarded-Proto` and
//! `X-Forwarded-Host` are kept (they describe the client's side of the first proxy), and the
//! headers the gateway does not write pass through.

use super::Forwarding;
use std::net::IpAddr;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
pub const FORWARDED: &str = "forwarded";
pub const X_REAL_IP: &str = "x-real-ip";

/// Which forwarding headers the gateway writes (gateway.yaml `forwarded.headers`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderSet {
    /// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`.
    pub x_forwarded: bool,
    /// RFC 7239 `Forwarded`.
    pub forwarded: bool,
    /// `X-Real-IP`.
    pub x_real_ip: bool,
}

/// The scheme the request came in with, on this hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http,
    Https,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Http => "http",
            Proto::Https => "https",
        }
    }
}

/// What one header of the upstream request becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Leave the request's lines (if any) as they are.
    Keep,
    /// Remove every line.
    Remove,
    /// Replace every line with this one value.
    Set(String),
    /// The request's lines joined, then this item ([`append_value`]).
    Append(String),
    /// This value when the request has none; else keep the request's.
    Default(String),
}

/// The five headers' edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edits {
    pub x_forwarded_for: Edit,
    pub x_forwarded_proto: Edit,
    pub x_forwarded_host: Edit,
    pub forwarded: Edit,
    pub x_real_ip: Edit,
}

impl Edits {
    /// Every header name with its edit.
    pub fn by_name(&self) -> [(&'static str, &Edit); 5] {
        [
            (X_FORWARDED_FOR, &self.x_forwarded_for),
            (X_FORWARDED_PROTO, &self.x_forwarded_proto),
            (X_FORWARDED_HOST, &self.x_forwarded_host),
            (FORWARDED, &self.forwarded),
            (X_REAL_IP, &self.x_real_ip),
        ]
    }
}

/// What this hop knows about the request.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The peer: the TCP peer, or the source its PROXY protocol header named.
    pub peer: Option<IpAddr>,
    /// The one client address ([`Forwarding::client`]).
    pub client: Option<IpAddr>,
    pub proto: Proto,
    /// The request's host (`Host`, or the authority of the target or of HTTP/2); empty when
    /// it has none.
    pub host: &'a str,
}

impl Forwarding {
    /// The forwarding headers of the upstream request from `hop`.
    pub fn edits(&self, hop: &Hop<'_>) -> Edits {
        let trusted = self.trusts(hop.peer);
        let untouched = || if trusted { Edit::Keep } else { Edit::Remove };
        let on = self.headers;
        let extend = |value: String| {
            if trusted {
                Edit::Append(value)
            } else {
                Edit::Set(value)
            }
        };
        let describe = |value: String| {
            if trusted {
                Edit::Default(value)
            } else {
                Edit::Set(value)
            }
        };
        let (x_forwarded_for, x_forwarded_proto, x_forwarded_host) = if on.x_forwarded {
            (
                hop.peer.map_or_else(untouched, |ip| extend(ip_text(ip))),
                describe(hop.proto.as_str().to_string()),
                if hop.host.is_empty() {
                    untouched()
                } else {
                    describe(hop.host.to_string())
                },
            )
        } else {
            (untouched(), untouched(), untouched())
        };
        Edits {
            x_forwarded_for,
            x_forwarded_proto,
            x_forwarded_host,
            forwarded: if on.forwarded {
                extend(forwarded_element(hop))
            } else {
                untouched()
            },
            x_real_ip: match (on.x_real_ip, hop.client) {
                (true, Some(ip)) => Edit::Set(ip_text(ip)),
                (true, None) => Edit::Remove,
                (false, _) => untouched(),
            },
        }
    }
}

/// `ip` as text (`192.0.2.1`, `2001:db8::1`). An IPv4 address (nearly every client) is written
/// digit by digit: `Ipv4Addr`'s `Display` goes through the formatter four times, about 800
/// instructions per request on the forwarding headers (benches/load/callgrind.sh).
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            push_ipv4(&mut out, v4);
            out
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

fn push_ipv4(out: &mut String, ip: std::net::Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

/// This hop's RFC 7239 element: `for=192.0.2.1;proto=http;host=example.com`, an IPv6 node
/// quoted and bracketed (`for="[2001:db8::1]"`), a host that is not a token quoted.
pub fn forwarded_element(hop: &Hop<'_>) -> String {
    let mut out = String::with_capacity(32 + hop.host.len());
    out.push_str("for=");
    match hop.peer {
        Some(IpAddr::V4(ip)) => push_ipv4(&mut out, ip),
        Some(IpAddr::V6(ip)) => {
            out.push_str("\"[");
            out.push_str(&ip.to_string());
            out.push_str("]\"");
        }
        None => out.push_str("unknown"),
    }
    out.push_str(";proto=");
    out.push_str(hop.proto.as_str());
    if !hop.host.is_empty() {
        out.push_str(";host=");
        push_token_or_quoted(&mut out, hop.host);
    }
    out
}

/// RFC 7230 `token` characters.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// `value` as a token when it is one, else as a quoted-string (`"` and `\` escaped).
fn push_token_or_quoted(out: &mut String, value: &str) {
    if value.chars().all(is_tchar) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// A list header's value with `item` added last: the request's lines, without the empty
/// elements and whitespace at their ends, joined with `, ` (as one line would carry them),
/// then `item`.
pub fn append_value<'a, I>(lines: I, item: &str) -> Vec<u8>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out = Vec::new();
    for line in lines {
        let line = trim_list(line);
        if line.is_empty() {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(item.as_bytes());
    out
}

/// `line` without whitespace and empty list elements at either end.
fn trim_list(mut line: &[u8]) -> &[u8] {
    let edge = |b: &u8| b.is_ascii_whitespace() || *b == b',';
    while let [first, rest @ ..] = line {
        if !edge(first) {
            break;
        }
        line = rest;
    }
    while let [rest @ .., last] = line {
        if !edge(last) {
            break;
        }
        line = rest;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_written_as_its_display_writes_it() {
        let mut addresses: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.9.100",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        ]
        .iter()
        .map(|a| a.parse().expect("address"))
        .collect();
        // Every octet value in every position.
        addresses.extend((0..=255u8).map(|o| IpAddr::from([o, 255 - o, o / 2, o.wrapping_mul(7)])));
        for ip in addresses {
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    fn policy(trusted: &[&str], headers: HeaderSet) -> Forwarding {
        Forwarding::new(
            trusted.iter().map(|n| n.parse().expect("cidr")).collect(),
            headers,
        )
    }

    const ALL: HeaderSet = HeaderSet {
        x_forwarded: true,
        forwarded: true,
        x_real_ip: true,
    };
    const X_FORWARDED: HeaderSet = HeaderSet {
        x_forwarded: true,
        forwarded: false,
        x_real_ip: false,
    };

    fn hop<'a>(peer: &str, client: &str, proto: Proto, host: &'a str) -> Hop<'a> {
        Hop {
            peer: peer.parse().ok(),
            client: client.parse().ok(),
            proto,
            host,
        }
    }

    fn set(s: &str) -> Edit {
        Edit::Set(s.to_string())
    }

    #[test]
    fn an_untrusted_peer_gets_every_header_from_scratch() {
        let e = policy(&["10.0.0.0/8"], ALL).edits(&hop(
            "192.0.2.1",
            "192.0.2.1",
            Proto::Http,
            "shop.example.com",
        ));
        assert_eq!(
            e,
            Edits {
                x_forwarded_for: set("192.0.2.1"),
                x_forwarded_proto: set("http"),
                x_forwarded_host: set("shop.example.com"),
                forwarded: set("for=192.0.2.1;proto=http;host=shop.example.com"),
                x_real_ip: set("192.0.2.1"),
            }
        );
    }

    #[test]
    fn a_trusted_peer_is_extended() {
        let e = policy(&["10.0.0.0/8"], ALL).edits(&hop(
            "10.0.0.1",
            "192.0.2.1",
            Proto::Https,
            "shop.example.com:8443",
        ));
        assert_eq!(
            e,
            Edits {
                x_forwarded_for: Edit::Append("10.0.0.1".into()),
                x_forwarded_proto: Edit::Default("https".into()),
                x_forwarded_host: Edit::Default("shop.example.com:8443".into()),
                forwarded: Edit::Append(
                    "for=10.0.0.1;proto=https;host=\"shop.example.com:8443\"".into()
                ),
                x_real_ip: set("192.0.2.1"),
            }
        );
    }

    #[test]
    fn the_default_writes_the_x_forwarded_trio_and_strips_the_rest_from_strangers() {
        let stranger =
            policy(&[], X_FORWARDED).edits(&hop("192.0.2.1", "192.0.2.1", Proto::Http, ""));
        assert_eq!(
            stranger,
            Edits {
                x_forwarded_for: set("192.0.2.1"),
                x_forwarded_proto: set("http"),
                x_forwarded_host: Edit::Remove,
                forwarded: Edit::Remove,
                x_real_ip: Edit::Remove,
            }
        );
        let proxy = policy(&["10.0.0.0/8"], X_FORWARDED).edits(&hop(
            "10.0.0.1",
            "192.0.2.1",
            Proto::Http,
            "a",
        ));
        assert_eq!(proxy.forwarded, Edit::Keep);
        assert_eq!(proxy.x_real_ip, Edit::Keep);
        let none = policy(&[], HeaderSet::default()).edits(&hop(
            "192.0.2.1",
            "192.0.2.1",
            Proto::Http,
            "a",
        ));
        assert!(
            none.by_name().iter().all(|(_, e)| **e == Edit::Remove),
            "{none:?}"
        );
    }

    #[test]
    fn rfc7239_nodes_and_hosts() {
        let h = hop(
            "2001:db8::1",
            "2001:db8::1",
            Proto::Http,
            "[2001:db8::2]:80",
        );
        assert_eq!(
            forwarded_element(&h),
            "for=\"[2001:db8::1]\";proto=http;host=\"[2001:db8::2]:80\""
        );
        let h = hop("none", "none", Proto::Https, "");
        assert_eq!(forwarded_element(&h), "for=unknown;proto=https");
        let h = hop("192.0.2.1", "", Proto::Http, "a\"b\\c");
        assert_eq!(
            forwarded_element(&h),
            "for=192.0.2.1;proto=http;host=\"a\\\"b\\\\c\""
        );
    }

    #[test]
    fn appending_joins_the_lines() {
        assert_eq!(append_value([], "10.0.0.1"), b"10.0.0.1");
        assert_eq!(
            append_value([&b"1.2.3.4, 5.6.7.8"[..], b" ", b", 9.9.9.9 ,"], "10.0.0.1"),
            b"1.2.3.4, 5.6.7.8, 9.9.9.9, 10.0.0.1"
        );
    }
}
