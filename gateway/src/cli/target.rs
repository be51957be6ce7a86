//! `--admin`: where the admin API is, written as `HOST:PORT`, `IP:PORT`, `[IPv6]:PORT` or
//! `http://` followed by one of those. Parsing is pure; [`resolve`] looks the name up.

use crate::admin::client::Endpoint;
use std::net::{IpAddr, ToSocketAddrs};

/// An admin address as given: host (name or IP, no brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `host:port`, an IPv6 address in brackets.
    pub fn name(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

const EXPECTED: &str = "expected HOST:PORT, IP:PORT or http://HOST:PORT";

/// Parses `--admin`.
pub fn parse(given: &str) -> Result<Target, String> {
    let found = |why: &str| format!("--admin: found {given:?}, {EXPECTED}{why}");
    if given.contains('@') {
        // Not echoed: what stands before the `@` may be a secret.
        return Err(format!(
            "--admin: found a user or token in the address, {EXPECTED}: the token comes from \
             --token-file or DYEGATE_ADMIN_TOKEN"
        ));
    }
    let rest = match given.split_once("://") {
        None => given,
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(found(
                ": the admin API has no TLS listener and this client speaks plain HTTP only \
                 (reach a remote gateway through an SSH tunnel, or use http:// on a trusted network)",
            ))
        }
        Some((scheme, _)) => return Err(found(&format!(" (unknown scheme {scheme:?})"))),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') {
        return Err(found(" (no path: the commands choose it)"));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (ip, port) = v6
                .split_once("]:")
                .ok_or_else(|| found(" (a port is required)"))?;
            match ip.parse::<IpAddr>() {
                Ok(IpAddr::V6(_)) => (ip, port),
                _ => return Err(found(&format!(" ({ip:?} is not an IPv6 address)"))),
            }
        }
        None => rest
            .rsplit_once(':')
            .filter(|(h, _)| !h.contains(':'))
            .ok_or_else(|| found(" (a port is required; an IPv6 address goes in brackets)"))?,
    };
    if host.is_empty() {
        return Err(found(" (a host is required)"));
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err(found(&format!(" (port {port:?} is not 1 to 65535)"))),
    };
    Ok(Target {
        host: host.to_string(),
        port,
    })
}

/// The addresses `target` names (a host name may give several, IPv6 and IPv4).
pub fn resolve(target: &Target) -> Result<Endpoint, String> {
    let name = target.name();
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the admin address {name}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!(
            "cannot resolve the admin address {name}: no address"
        ));
    }
    Ok(Endpoint { name, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(given: &str) -> (String, u16) {
        let t = parse(given).unwrap_or_else(|e| panic!("{given}: {e}"));
        (t.host, t.port)
    }

    #[test]
    fn host_port_ip_port_and_http_urls() {
        assert_eq!(ok("127.0.0.1:9901"), ("127.0.0.1".into(), 9901));
        assert_eq!(ok("localhost:9901"), ("localhost".into(), 9901));
        assert_eq!(ok("http://localhost:9901"), ("localhost".into(), 9901));
        assert_eq!(ok("HTTP://gw.internal:9901/"), ("gw.internal".into(), 9901));
        assert_eq!(ok("[::1]:9901"), ("::1".into(), 9901));
        assert_eq!(ok("http://[::1]:9901"), ("::1".into(), 9901));
        assert_eq!(
            parse("[::1]:9901").map(|t| t.name()),
            Ok("[::1]:9901".into())
        );
        assert_eq!(
            parse("http://localhost:9901/").map(|t| t.name()),
            Ok("localhost:9901".into())
        );
    }

    #[test]
    fn refusals_say_what_was_found_and_why() {
        let e = |given: &str| parse(given).err().unwrap_or_default();
        assert_eq!(
            e("https://gw:9901"),
            "--admin: found \"https://gw:9901\", expected HOST:PORT, IP:PORT or http://HOST:PORT: \
             the admin API has no TLS listener and this client speaks plain HTTP only (reach a \
             remote gateway through an SSH tunnel, or use http:// on a trusted network)"
        );
        assert!(e("localhost").ends_with("(a port is required; an IPv6 address goes in brackets)"));
        assert!(e("::1").ends_with("(a port is required; an IPv6 address goes in brackets)"));
        assert!(e("http://gw:9901/status").ends_with("(no path: the commands choose it)"));
        assert_eq!(
            e("http://me:s3cret@gw:9901"),
            "--admin: found a user or token in the address, expected HOST:PORT, IP:PORT or \
             http://HOST:PORT: the token comes from --token-file or DYEGATE_ADMIN_TOKEN"
        );
        assert!(e("gw:99999").ends_with("(port \"99999\" is not 1 to 65535)"));
        assert!(e("gw:0").ends_with("(port \"0\" is not 1 to 65535)"));
        assert!(e(":9901").ends_with("(a host is required)"));
        assert!(e("ftp://gw:9901").ends_with("(unknown scheme \"ftp\")"));
        assert!(e("[gw]:9901").ends_with("(\"gw\" is not an IPv6 address)"));
    }
}
