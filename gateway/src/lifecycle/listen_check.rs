//! Before a fresh start (not an upgrade, which takes its sockets over from the running
//! process): every address dyegate will listen on is free. Pingora retries a busy address every
//! second for 30 s and then gives up inside a service; a port held by another process is better
//! said at once, naming the address and what it was for.

use std::net::{SocketAddr, TcpListener};

/// What a listening address is for, in the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Http,
    Https,
    Admin,
}

impl Purpose {
    /// As the startup line names it.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::Http => "HTTP",
            Purpose::Https => "HTTPS",
            Purpose::Admin => "admin API",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Purpose::Http => "proxy (listen)",
            Purpose::Https => "HTTPS (tls.listen)",
            Purpose::Admin => "admin API (admin.listen)",
        }
    }
}

/// The addresses that cannot be bound, each with why, in a sentence a person can act on.
/// The probe binds like Pingora does (`SO_REUSEADDR`, so a socket of a closed connection in
/// `TIME_WAIT` is no reason) and closes at once.
pub fn busy(addrs: &[(SocketAddr, Purpose)]) -> Vec<String> {
    let mut out = Vec::new();
    for (addr, purpose) in addrs {
        if let Err(e) = TcpListener::bind(addr) {
            let hint = match e.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "; another process listens there (`ss -ltnp 'sport = :{}'` shows which); to replace a running dyegate, use `dyegate upgrade`",
                    addr.port()
                ),
                std::io::ErrorKind::PermissionDenied => {
                    "; ports below 1024 need CAP_NET_BIND_SERVICE".to_string()
                }
                _ => String::new(),
            };
            out.push(format!(
                "cannot listen on {addr} for the {}: {e}{hint}",
                purpose.as_str()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_is_named_with_its_purpose_and_a_free_one_is_not() {
        let held = TcpListener::bind("127.0.0.1:0").expect("a listener");
        let addr = held.local_addr().expect("its address");
        let free = {
            let l = TcpListener::bind("127.0.0.1:0").expect("a listener");
            l.local_addr().expect("its address")
        };
        let found = busy(&[(addr, Purpose::Admin), (free, Purpose::Http)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(&format!(
                "cannot listen on {addr} for the admin API (admin.listen): "
            )),
            "{found:?}"
        );
        assert!(
            found[0].contains("another process listens there"),
            "{found:?}"
        );
    }
}
