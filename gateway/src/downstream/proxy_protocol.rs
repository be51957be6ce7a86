//! The PROXY protocol on a listener behind a layer-4 balancer (gateway.yaml `listen` or
//! `tls.listen` entries with `proxy_protocol: true`): which listener a connection came in on,
//! whether its peer may send a header (`proxy_protocol_sources`), the header read before TLS
//! and HTTP under the head's deadline, and the source it names carried to the request hooks.
//!
//! The source is carried as the connection's peer address: the stream's socket digest is
//! replaced by one whose peer is the source, so Pingora's `Session::client_addr` (and
//! everything dyegate reads from it: sticky `client_ip`, rate limits, trusted sources, logs)
//! sees the client, not the balancer. Pingora 0.9 has no other way in (docs/pingora-upstream.md
//! §19).
//!
//! Pingora hands an app a stream without saying which listener accepted it, so the listener is
//! found by the connection's local address (one `getsockname`, only when some listener has the
//! PROXY protocol on).

use super::proxy_header::{parse, Parsed, MAX_HEADER_BYTES};
use crate::config::settings::listen::ProxyProtocolListener;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// The PROXY protocol listeners of the process (plain and HTTPS).
#[derive(Debug, Clone, Default)]
pub struct ProxyListeners {
    listeners: Vec<ProxyProtocolListener>,
}

/// Why a connection was closed before its header was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The peer is not in `proxy_protocol_sources` (closed at accept, nothing read).
    Source,
    /// The first bytes are not a PROXY protocol header, or a malformed or oversized one.
    Header,
    /// The header (or its first byte) did not arrive by the deadline.
    Slow,
    /// The peer closed, or the read failed, before a whole header.
    Closed,
}

impl ProxyListeners {
    pub fn new(listeners: Vec<ProxyProtocolListener>) -> Self {
        ProxyListeners { listeners }
    }

    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// The PROXY protocol listener that accepted a connection to `local`, if it came in on one.
    /// A listener on an unspecified address (`0.0.0.0`, `[::]`) takes every local address of
    /// its port; one on the exact address is preferred.
    pub fn of(&self, local: SocketAddr) -> Option<&ProxyProtocolListener> {
        let ports = || {
            self.listeners
                .iter()
                .filter(|l| l.addr.port() == local.port())
        };
        ports().find(|l| l.addr == local).or_else(|| {
            let wildcard = || ports().filter(|l| l.addr.ip().is_unspecified());
            wildcard()
                .find(|l| l.addr.is_ipv4() == local.is_ipv4())
                .or_else(|| wildcard().next())
        })
    }

    /// The listener `stream` came in on, when it is a PROXY protocol one.
    pub fn of_stream(&self, stream: &L4Stream) -> Option<&ProxyProtocolListener> {
        if self.is_empty() {
            return None;
        }
        let digest = stream.get_socket_digest()?;
        let local = *digest.local_addr()?.as_inet()?;
        self.of(local)
    }
}

/// Takes the PROXY protocol header off a new connection of `listener`: refuses a peer outside
/// `proxy_protocol_sources`, reads the header by `deadline` (at most [`MAX_HEADER_BYTES`]),
/// gives back the bytes read past it, and makes the source it names the connection's peer.
pub async fn accept(
    listener: &ProxyProtocolListener,
    stream: &mut L4Stream,
    deadline: Instant,
) -> Result<(), Refused> {
    if let Some(sources) = &listener.sources {
        let peer = peer_ip(stream).map(canonical);
        if !peer.is_some_and(|ip| sources.iter().any(|n| n.contains(&ip))) {
            return Err(Refused::Source);
        }
    }
    let mut buf = vec![0u8; MAX_HEADER_BYTES];
    let mut filled = 0;
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf[filled..])).await;
        match read {
            Err(_) => return Err(Refused::Slow),
            Ok(Err(_)) | Ok(Ok(0)) => return Err(Refused::Closed),
            Ok(Ok(n)) => filled += n,
        }
        match parse(&buf[..filled]) {
            Parsed::Incomplete if filled < MAX_HEADER_BYTES => continue,
            Parsed::Incomplete | Parsed::Invalid => return Err(Refused::Header),
            Parsed::Header { len, source } => {
                stream.rewind(&buf[len..filled]);
                if let Some(source) = source {
                    carry(stream, source);
                }
                return Ok(());
            }
        }
    }
}

/// The TCP peer's address.
fn peer_ip(stream: &L4Stream) -> Option<IpAddr> {
    let digest = stream.get_socket_digest()?;
    let peer = digest.peer_addr()?.as_inet()?.ip();
    Some(peer)
}

/// IPv4-mapped IPv6 peers (a dual-stack listener) are matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Makes `source` the peer address the rest of the connection's handling sees: a new socket
/// digest of the same socket, with that peer (the local address kept when already known).
fn carry(stream: &mut L4Stream, source: SocketAddr) {
    let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
    // Both cells are new and empty: `set` cannot fail.
    let _ = digest.peer_addr.set(Some(PeerAddr::Inet(source)));
    if let Some(local) = stream
        .get_socket_digest()
        .and_then(|d| d.local_addr().cloned())
    {
        let _ = digest.local_addr.set(Some(local));
    }
    stream.set_socket_digest(digest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    fn listener(addr: &str, sources: Option<&[&str]>) -> ProxyProtocolListener {
        ProxyProtocolListener {
            addr: addr.parse().expect("addr"),
            sources: sources.map(|s| s.iter().map(|n| n.parse().expect("net")).collect()),
        }
    }

    #[test]
    fn the_listener_is_found_by_local_address() {
        let table = ProxyListeners::new(vec![
            listener("127.0.0.1:8080", None),
            listener("0.0.0.0:8081", None),
            listener("[::]:8081", Some(&["10.0.0.0/8"])),
            listener("[::]:8082", None),
        ]);
        let of = |a: &str| {
            table
                .of(a.parse().expect("addr"))
                .map(|l| l.addr.to_string())
        };
        assert_eq!(of("127.0.0.1:8080").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(of("127.0.0.2:8080"), None);
        assert_eq!(of("10.1.2.3:8081").as_deref(), Some("0.0.0.0:8081"));
        assert_eq!(of("[2001:db8::1]:8081").as_deref(), Some("[::]:8081"));
        // A dual-stack [::] listener sees IPv4 clients on mapped addresses, or plain ones.
        assert_eq!(of("[::ffff:10.0.0.1]:8082").as_deref(), Some("[::]:8082"));
        assert_eq!(of("10.0.0.1:8082").as_deref(), Some("[::]:8082"));
        assert_eq!(of("127.0.0.1:9999"), None);
        assert!(ProxyListeners::default().is_empty());
    }

    /// A connected pair: the accepted side as Pingora's stream (with the socket digest a
    /// listener gives it), and the client side.
    async fn pair() -> (L4Stream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(l.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, peer) = l.accept().await.expect("accept");
        let mut stream: L4Stream = server.into();
        let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
        let _ = digest.peer_addr.set(Some(PeerAddr::Inet(peer)));
        stream.set_socket_digest(digest);
        (stream, client)
    }

    fn peer_of(stream: &L4Stream) -> String {
        let digest = stream.get_socket_digest().expect("digest");
        digest.peer_addr().expect("peer").to_string()
    }

    fn soon() -> Instant {
        Instant::now() + std::time::Duration::from_secs(5)
    }

    #[tokio::test]
    async fn the_source_becomes_the_peer_and_the_rest_is_given_back() {
        let (mut stream, mut client) = pair().await;
        client
            .write_all(b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\nGET / HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let l = listener("127.0.0.1:1", Some(&["127.0.0.0/8"]));
        assert_eq!(accept(&l, &mut stream, soon()).await, Ok(()));
        assert_eq!(peer_of(&stream), "192.0.2.1:51000");
        let mut rest = vec![0u8; 64];
        let n = stream.read(&mut rest).await.expect("read");
        assert_eq!(&rest[..n], b"GET / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_local_header_keeps_the_tcp_peer() {
        let (mut stream, mut client) = pair().await;
        let before = peer_of(&stream);
        let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        client.write_all(&local).await.expect("write");
        assert_eq!(
            accept(&listener("127.0.0.1:1", None), &mut stream, soon()).await,
            Ok(())
        );
        assert_eq!(peer_of(&stream), before);
    }

    #[tokio::test]
    async fn refusals() {
        let l = listener("127.0.0.1:1", None);
        let (mut stream, _client) = pair().await;
        let not_allowed = listener("127.0.0.1:1", Some(&["10.0.0.0/8"]));
        assert_eq!(
            accept(&not_allowed, &mut stream, soon()).await,
            Err(Refused::Source)
        );

        let (mut stream, mut client) = pair().await;
        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        assert_eq!(accept(&l, &mut stream, soon()).await, Err(Refused::Header));

        let (mut stream, mut client) = pair().await;
        client
            .write_all(b"PROXY TCP4 192.0.2.1")
            .await
            .expect("write");
        let deadline = Instant::now() + std::time::Duration::from_millis(100);
        assert_eq!(accept(&l, &mut stream, deadline).await, Err(Refused::Slow));

        let (mut stream, client) = pair().await;
        drop(client);
        assert_eq!(accept(&l, &mut stream, soon()).await, Err(Refused::Closed));
    }
}
