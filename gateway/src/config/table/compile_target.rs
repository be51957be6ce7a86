//! `upstreams.NAME.targets[i]` to a typed entry: `IP:PORT` (one target) or `NAME:PORT` (a DNS
//! name, one target per address it resolves to). The only place a target's text is read.

use crate::routing::{NamedTarget, Target, TargetEntry};
use std::net::SocketAddr;

/// What a target's text is, or why it is none: the message of a located config error.
pub fn parse_target(text: &str, weight: u32) -> Result<TargetEntry, String> {
    let t = text.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return match addr.port() {
            0 => Err(format!(
                "found {text:?} with port 0, expected a port from 1 to 65535"
            )),
            _ => Ok(TargetEntry::Addr(Target::at(addr, weight))),
        };
    }
    let expected = "expected IP:PORT such as 127.0.0.1:9001 or [::1]:9001, or NAME:PORT such as orders.internal:8080 (a DNS name: letters, digits, `-` and `_` in dot-separated labels)";
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err(match is_host_name(t) {
            true => format!("found {text:?} without a port, {expected}"),
            false => format!("found {text:?}, {expected}"),
        });
    };
    if host.contains(':') || host.starts_with('[') {
        // An IPv6 address that did not parse as one, with or without brackets.
        return Err(format!("found {text:?}, {expected}"));
    }
    if !is_host_name(host) {
        return Err(format!("found {text:?}, {expected}"));
    }
    let port = match port.parse::<u32>() {
        Ok(p @ 1..=65535) => p as u16,
        Ok(p) => {
            return Err(format!(
                "found {text:?} with port {p}, expected a port from 1 to 65535"
            ))
        }
        Err(_) if port.is_empty() => {
            return Err(format!("found {text:?} without a port, {expected}"))
        }
        Err(_) => {
            return Err(format!(
                "found {text:?} with port {port:?}, expected a port from 1 to 65535"
            ))
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    Ok(TargetEntry::Name(NamedTarget {
        host: host.into(),
        port,
        weight,
    }))
}

/// A DNS host name: dot-separated labels of 1-63 letters, digits, `-` and `_` (not starting or
/// ending with `-`), 253 bytes at most, an optional final dot; not all digits and dots (that is
/// a malformed IPv4 address, not a name).
fn is_host_name(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> (String, u16) {
        match parse_target(text, 1) {
            Ok(TargetEntry::Name(n)) => (n.host.to_string(), n.port),
            other => panic!("{text}: {other:?}"),
        }
    }

    fn err(text: &str) -> String {
        match parse_target(text, 1) {
            Err(e) => e,
            Ok(e) => panic!("{text}: parsed as {e:?}"),
        }
    }

    #[test]
    fn addresses_and_names() {
        assert!(matches!(
            parse_target("127.0.0.1:9001", 2),
            Ok(TargetEntry::Addr(Target { weight: 2, .. }))
        ));
        assert!(matches!(
            parse_target("[::1]:9001", 1),
            Ok(TargetEntry::Addr(_))
        ));
        assert_eq!(
            name("orders.internal:8080"),
            ("orders.internal".into(), 8080)
        );
        assert_eq!(
            name(" Orders.Internal.:80 "),
            ("orders.internal".into(), 80)
        );
        assert_eq!(name("localhost:9001"), ("localhost".into(), 9001));
        assert_eq!(name("_grpc.svc-1.local:1"), ("_grpc.svc-1.local".into(), 1));
        assert_eq!(name("a:65535").1, 65535);
    }

    #[test]
    fn what_is_refused_and_why() {
        let expected = "expected IP:PORT such as 127.0.0.1:9001 or [::1]:9001, or NAME:PORT such as orders.internal:8080 (a DNS name: letters, digits, `-` and `_` in dot-separated labels)";
        assert_eq!(
            err("bad name!:80"),
            format!("found \"bad name!:80\", {expected}")
        );
        assert_eq!(
            err("orders.internal"),
            format!("found \"orders.internal\" without a port, {expected}")
        );
        assert_eq!(
            err("orders.internal:"),
            format!("found \"orders.internal:\" without a port, {expected}")
        );
        assert_eq!(
            err("orders.internal:70000"),
            "found \"orders.internal:70000\" with port 70000, expected a port from 1 to 65535"
        );
        assert_eq!(
            err("orders.internal:0"),
            "found \"orders.internal:0\" with port 0, expected a port from 1 to 65535"
        );
        assert_eq!(
            err("orders.internal:http"),
            "found \"orders.internal:http\" with port \"http\", expected a port from 1 to 65535"
        );
        assert_eq!(
            err("127.0.0.1:0"),
            "found \"127.0.0.1:0\" with port 0, expected a port from 1 to 65535"
        );
        for bad in [
            "10.0.0.300:80",
            "::1:80",
            "[::1:80",
            "-a.b:1",
            "a..b:1",
            ":80",
            "a b:1",
        ] {
            assert_eq!(err(bad), format!("found {bad:?}, {expected}"), "{bad}");
        }
        let long = format!("{}.x:1", "a".repeat(64));
        assert_eq!(err(&long), format!("found {long:?}, {expected}"));
    }
}
