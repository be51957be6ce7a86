//! How a group's targets are spoken to, compiled: the HTTP version and, per target, a prepared
//! Pingora peer (address, TLS, SNI, CA, ALPN) that an attempt only clones and gives its
//! timeouts. Built only by `config::compile_transport`.

use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;

/// The HTTP version spoken to a group's targets (`upstreams.NAME.protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (over TLS when the group has `tls`).
    #[default]
    H1,
    /// HTTP/2 over TLS, by ALPN.
    H2,
    /// HTTP/2 in cleartext, prior knowledge.
    H2c,
}

impl Protocol {
    /// Whether requests to the group travel over HTTP/2 (and so can carry gRPC: trailers).
    pub fn is_h2(self) -> bool {
        !matches!(self, Protocol::H1)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::H1 => "h1",
            Protocol::H2 => "h2",
            Protocol::H2c => "h2c",
        }
    }
}

/// A group's protocol and one prepared peer per target (same order as the group's targets).
#[derive(Debug, Clone)]
pub struct Transport {
    pub protocol: Protocol,
    /// Whether the targets are spoken to over TLS.
    pub tls: bool,
    peers: Vec<HttpPeer>,
}

impl Transport {
    /// Cleartext HTTP/1.1 to each address: what a group without `protocol` and `tls` gets.
    pub fn plain(addrs: impl Iterator<Item = SocketAddr>) -> Transport {
        Transport {
            protocol: Protocol::H1,
            tls: false,
            peers: addrs
                .map(|a| HttpPeer::new(a, false, String::new()))
                .collect(),
        }
    }

    /// `peers` prepared by the config compiler, one per target in order.
    pub fn new(protocol: Protocol, tls: bool, peers: Vec<HttpPeer>) -> Transport {
        Transport {
            protocol,
            tls,
            peers,
        }
    }

    /// The prepared peer of the target at `index`.
    pub fn peer(&self, index: usize) -> Option<&HttpPeer> {
        self.peers.get(index)
    }

    pub fn peers(&self) -> &[HttpPeer] {
        &self.peers
    }
}
