//! The client's address behind proxies on the request path: found once per request in
//! `request_filter` (and by the admin API for its audit lines), and the forwarding headers
//! written on the upstream request. The rules are `dyegate_plugins::forwarded`'s; this is where
//! they meet Pingora's session and request header.

use crate::downstream::fields::{header_value, Fields, Name};
use dyegate_plugins::forwarded::{
    append_value, Edit, Edits, Hop, Proto, FORWARDED, X_FORWARDED_FOR, X_FORWARDED_HOST,
    X_FORWARDED_PROTO, X_REAL_IP,
};
use dyegate_plugins::{ClientAddr, Forwarding};
use http::HeaderMap;
use pingora::prelude::*;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;

/// The one client address of a request from `peer` (the session's client address: the TCP
/// peer, or the source of the connection's PROXY protocol header) with `headers`.
pub fn client_of(
    forwarding: &Forwarding,
    peer: Option<&PeerAddr>,
    headers: &HeaderMap,
) -> Option<ClientAddr> {
    let peer = peer.and_then(PeerAddr::as_inet).copied();
    let xff = headers.get_all(FIELDS[0].parsed()).iter().rev();
    forwarding.client(peer, xff.map(|v| v.as_bytes()))
}

/// Writes the forwarding headers of `hop` on the upstream request.
pub fn write_upstream(forwarding: &Forwarding, hop: &Hop<'_>, req: &mut dyn Fields) -> Result<()> {
    let Edits {
        x_forwarded_for,
        x_forwarded_proto,
        x_forwarded_host,
        forwarded,
        x_real_ip,
    } = forwarding.edits(hop);
    apply(req, &FIELDS[0], x_forwarded_for)?;
    apply(req, &FIELDS[1], x_forwarded_proto)?;
    apply(req, &FIELDS[2], x_forwarded_host)?;
    apply(req, &FIELDS[3], forwarded)?;
    apply(req, &FIELDS[4], x_real_ip)
}

/// The five names, parsed once: a lookup by `&str` parses the name every time (about 140
/// instructions a lookup, three to five lookups a request), an insert by `&str` too.
static FIELDS: [Name; 5] = [
    Name::new(X_FORWARDED_FOR),
    Name::new(X_FORWARDED_PROTO),
    Name::new(X_FORWARDED_HOST),
    Name::new(FORWARDED),
    Name::new(X_REAL_IP),
];

/// The scheme of a request that came over TLS or not.
pub fn proto(tls: bool) -> Proto {
    if tls {
        Proto::Https
    } else {
        Proto::Http
    }
}

fn apply(req: &mut dyn Fields, name: &Name, edit: Edit) -> Result<()> {
    match edit {
        Edit::Keep => {}
        Edit::Remove => req.remove(name.parsed()),
        Edit::Set(value) => req.set(name, header_value(value)?)?,
        Edit::Default(value) => {
            if !req.headers().contains_key(name.parsed()) {
                req.set(name, header_value(value)?)?;
            }
        }
        Edit::Append(item) => {
            let lines = req.headers().get_all(name.parsed()).iter();
            let value = append_value(lines.map(|v| v.as_bytes()), &item);
            req.set(name, header_value(value)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dyegate_plugins::forwarded::HeaderSet;
    use pingora::http::RequestHeader;

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        for (n, v) in headers {
            req.append_header(n.to_string(), *v).expect("header");
        }
        req
    }

    fn lines(req: &RequestHeader, name: &str) -> Vec<String> {
        (req.headers.get_all(name).iter())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn a_trusted_proxys_lines_are_joined_and_extended() {
        let all = HeaderSet {
            x_forwarded: true,
            forwarded: true,
            x_real_ip: true,
        };
        let f = Forwarding::new(vec!["10.0.0.0/8".parse().expect("net")], all);
        let mut req = request(&[
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-for", "10.0.0.9"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=192.0.2.1;proto=https"),
            ("x-real-ip", "6.6.6.6"),
        ]);
        let hop = Hop {
            peer: "10.0.0.1".parse().ok(),
            client: "192.0.2.1".parse().ok(),
            proto: Proto::Http,
            host: "shop.example.com",
        };
        write_upstream(&f, &hop, &mut req).expect("written");
        assert_eq!(
            lines(&req, "x-forwarded-for"),
            ["192.0.2.1, 10.0.0.9, 10.0.0.1"]
        );
        assert_eq!(lines(&req, "x-forwarded-proto"), ["https"]);
        assert_eq!(lines(&req, "x-forwarded-host"), ["shop.example.com"]);
        assert_eq!(
            lines(&req, "forwarded"),
            ["for=192.0.2.1;proto=https, for=10.0.0.1;proto=http;host=shop.example.com"]
        );
        assert_eq!(lines(&req, "x-real-ip"), ["192.0.2.1"]);
    }

    #[test]
    fn a_strangers_lines_are_replaced_or_removed() {
        let f = Forwarding::new(
            Vec::new(),
            HeaderSet {
                x_forwarded: true,
                ..Default::default()
            },
        );
        let mut req = request(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
            ("x-forwarded-host", "evil"),
            ("forwarded", "for=1.1.1.1"),
            ("x-real-ip", "1.1.1.1"),
        ]);
        let hop = Hop {
            peer: "192.0.2.1".parse().ok(),
            client: "192.0.2.1".parse().ok(),
            proto: Proto::Https,
            host: "a",
        };
        write_upstream(&f, &hop, &mut req).expect("written");
        assert_eq!(lines(&req, "x-forwarded-for"), ["192.0.2.1"]);
        assert_eq!(lines(&req, "x-forwarded-proto"), ["https"]);
        assert_eq!(lines(&req, "x-forwarded-host"), ["a"]);
        assert!(lines(&req, "forwarded").is_empty());
        assert!(lines(&req, "x-real-ip").is_empty());
    }
}
