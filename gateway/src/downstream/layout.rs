//! The services of the proxy listeners by runtime layout (gateway.yaml `pingora.runtime`).
//!
//! - `shared`: one Pingora service on one runtime of `threads` worker threads, one listening
//!   socket per address.
//! - `per_core`: `threads` services, each on a one-thread runtime with its own `SO_REUSEPORT`
//!   listening socket per address (the kernel spreads new connections over the sockets), its
//!   own accept loop and its own upstream connection pool. One [`BoundedApp`] admission (the
//!   connection cap, the metrics) for all of them.
//!
//! Pingora keeps listening sockets in a table keyed by the address string, binds one socket per
//! key, and hands the table over on a binary upgrade. So runtime `i` listens on the address
//! written with `i` leading zeros in its port (`127.0.0.1:8080`, `127.0.0.1:08080`, ...): the
//! same address to the kernel, a key of its own to Pingora, and the same key again in the next
//! process, which therefore inherits every socket. A new process with fewer runtimes closes the
//! sockets nobody claims (Pingora's bootstrap); one with more binds the missing ones beside the
//! inherited (`SO_REUSEPORT` lets them share the port).

use super::proxy_protocol::ProxyListeners;
use super::{BoundedApp, DownstreamMetrics};
use crate::config::settings::runtime::RuntimeLayout;
use crate::tls::TlsAcceptor;
use pingora::apps::HttpServerApp;
use pingora::listeners::{L4BufferSettings, ListenerConfig, TcpSocketOptions};
use pingora::services::listening::Service;
use std::net::SocketAddr;
use std::sync::Arc;

/// Name of the proxy listeners' service (runtime `i` of `per_core`: `dyegate proxy i`).
const NAME: &str = "dyegate proxy";

/// Name of the HTTPS listeners' service.
const TLS_NAME: &str = "dyegate tls";

/// How the proxy listeners are served, resolved at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Shared { threads: usize },
    PerCore { runtimes: usize },
}

impl Layout {
    /// The layout gateway.yaml asks for, unless `per_core` cannot bind its sockets beside the
    /// ones already listening (a process being upgraded that listens without `SO_REUSEPORT`):
    /// then `shared`, with a warning, so that an upgrade never loses its listeners.
    pub fn resolve(layout: RuntimeLayout, threads: usize, listen: &[SocketAddr]) -> Layout {
        match layout {
            RuntimeLayout::Shared => Layout::Shared { threads },
            RuntimeLayout::PerCore => match listen.iter().find(|a| !can_share_port(**a)) {
                None => Layout::PerCore { runtimes: threads },
                Some(addr) => {
                    log::warn!(
                        "pingora.runtime per_core: {addr} is held by a socket without SO_REUSEPORT (a process started with runtime shared, or another program); serving it with runtime shared and {threads} threads instead. Restart, rather than upgrade, to switch to per_core"
                    );
                    Layout::Shared { threads }
                }
            },
        }
    }
}

/// Whether a `SO_REUSEPORT` socket can be bound to `addr` now: true when the address is free
/// or held by other `SO_REUSEPORT` sockets of this user. The probe is bound, never listening,
/// and closed at once, so it never receives a connection.
fn can_share_port(addr: SocketAddr) -> bool {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let Ok(socket) = socket else {
        // Cannot even make a socket: let Pingora's own bind report it.
        return true;
    };
    let probe = socket
        .set_reuseaddr(true)
        .and_then(|()| socket.set_reuseport(true))
        .and_then(|()| socket.bind(addr));
    !matches!(probe, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

/// Pingora's listening-socket key for `addr` in runtime `index`: the port with `index` leading
/// zeros, which parses back to `addr`.
pub fn listener_key(addr: SocketAddr, index: usize) -> String {
    let port = addr.port().to_string();
    let port = format!("{}{port}", "0".repeat(index));
    match addr {
        SocketAddr::V4(a) => format!("{}:{port}", a.ip()),
        SocketAddr::V6(a) => format!("[{}]:{port}", a.ip()),
    }
}

/// What every proxy listener's connections are held to, whatever its service.
pub struct Downstream {
    pub limits: super::LiveLimits,
    /// Detect the h2c preface on the plain listeners.
    pub h2c: bool,
    pub metrics: DownstreamMetrics,
    /// The listeners (plain and HTTPS) that take a PROXY protocol header first.
    pub proxy_protocol: ProxyListeners,
}

/// The HTTPS listeners (gateway.yaml `tls:`) and their handshake.
pub struct TlsListeners<'a> {
    pub listen: &'a [SocketAddr],
    pub acceptor: Arc<TlsAcceptor>,
}

/// The proxy listeners' services: `make_app(i)` builds runtime `i`'s app (one for `shared`).
/// With `tls`, one more service for the HTTPS listeners, on the server's shared runtime in
/// either layout: runtime 0's app with the handshake first, behind the same admission.
pub fn proxy_services<A, F>(
    layout: Layout,
    listen: &[SocketAddr],
    downstream: Downstream,
    tls: Option<TlsListeners<'_>>,
    mut make_app: F,
) -> Vec<Service<BoundedApp<A>>>
where
    A: HttpServerApp + Send + Sync + 'static,
    F: FnMut(usize) -> A,
{
    let Downstream {
        limits,
        h2c,
        metrics,
        proxy_protocol,
    } = downstream;
    let first =
        BoundedApp::new(make_app(0), limits, h2c, metrics).with_proxy_protocol(proxy_protocol);
    let tls_service = tls.map(|tls| {
        let mut service = Service::new(TLS_NAME.to_string(), first.with_tls(tls.acceptor));
        for addr in tls.listen {
            // Plain sockets: the handshake is BoundedApp's (see tls::acceptor).
            service.add_listener(listener(addr.to_string(), false));
        }
        service
    });
    let mut services = plain_services(layout, listen, first, make_app);
    services.extend(tls_service);
    services
}

/// The plain proxy listeners' services, `first` serving runtime 0.
fn plain_services<A, F>(
    layout: Layout,
    listen: &[SocketAddr],
    first: BoundedApp<A>,
    mut make_app: F,
) -> Vec<Service<BoundedApp<A>>>
where
    A: HttpServerApp + Send + Sync + 'static,
    F: FnMut(usize) -> A,
{
    match layout {
        Layout::Shared { .. } => {
            let mut service = Service::new(NAME.to_string(), first);
            for addr in listen {
                service.add_listener(listener(addr.to_string(), false));
            }
            vec![service]
        }
        Layout::PerCore { runtimes } => {
            let apps: Vec<BoundedApp<A>> =
                (1..runtimes).map(|i| first.sibling(make_app(i))).collect();
            std::iter::once(first)
                .chain(apps)
                .enumerate()
                .map(|(i, app)| {
                    let mut service = Service::new(format!("{NAME} {i}"), app);
                    service.threads = Some(1);
                    for addr in listen {
                        service.add_listener(listener(listener_key(*addr, i), true));
                    }
                    service
                })
                .collect()
        }
    }
}

/// One proxy listener. No write buffer downstream: Pingora flushes a Content-Length body only
/// when it is complete, so its 1460-byte buffer would hold the first bytes of a slow body (10 of
/// 100 bytes then a stall reached the client as 0 bytes); [`super::coalesce`] sends a small
/// answer's head and body together instead. Chunked bodies are flushed per chunk either way. No
/// read buffer either: request heads are read by `downstream::head` into their own small
/// buffer, bodies into Pingora's, and Pingora's 64 KiB read buffer stayed resident for every
/// idle keep-alive connection (5,000 of them: 397 MB; without it: see benches/load/README.md).
fn listener(key: String, reuseport: bool) -> ListenerConfig {
    let config = ListenerConfig::tcp(key).l4_buffer(L4BufferSettings::unbuffered());
    if !reuseport {
        return config;
    }
    let mut options = TcpSocketOptions::default();
    options.so_reuseport = Some(true);
    config.tcp_socket_options(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_key_parses_back_to_the_address() {
        for addr in ["127.0.0.1:8080", "[::1]:443", "0.0.0.0:1"] {
            let addr: SocketAddr = addr.parse().expect("address");
            let keys: Vec<String> = (0..16).map(|i| listener_key(addr, i)).collect();
            assert_eq!(keys[0], addr.to_string());
            for key in &keys {
                assert_eq!(key.parse::<SocketAddr>().ok(), Some(addr), "{key}");
            }
            let distinct: std::collections::HashSet<&String> = keys.iter().collect();
            assert_eq!(distinct.len(), keys.len());
        }
    }

    #[test]
    fn per_core_falls_back_to_shared_beside_a_socket_without_reuseport() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = held.local_addr().expect("addr");
        assert_eq!(
            Layout::resolve(RuntimeLayout::PerCore, 4, &[addr]),
            Layout::Shared { threads: 4 }
        );
        drop(held);
        assert_eq!(
            Layout::resolve(RuntimeLayout::PerCore, 4, &[addr]),
            Layout::PerCore { runtimes: 4 }
        );
        assert_eq!(
            Layout::resolve(RuntimeLayout::Shared, 3, &[addr]),
            Layout::Shared { threads: 3 }
        );
    }
}
