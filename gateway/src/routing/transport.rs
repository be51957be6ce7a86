//! How a group's targets are spoken to, compiled: the HTTP version and the template each
//! target's prepared Pingora peer (address, TLS, SNI, CA, ALPN) is made from; an attempt only
//! clones that peer and gives it its timeouts. Built only by `config::table::compile_transport`.

use super::members::Target;
use pingora::upstreams::peer::{HttpPeer, HttpUpstreamRequestPolicy, PeerOptions};

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

/// A group's protocol and how a peer is prepared for each of its targets.
#[derive(Debug, Clone)]
pub struct Transport {
    pub protocol: Protocol,
    /// Whether the targets are spoken to over TLS.
    pub tls: bool,
    peer: PeerTemplate,
}

/// What every peer of a group shares (ALPN, verification, CA, pool key), and the name sent in
/// the TLS handshake when the group's `tls.sni` gives one.
#[derive(Debug, Clone)]
pub struct PeerTemplate {
    /// `tls.sni`: sent and verified for every target. Without it: the target's DNS name for a
    /// `NAME:PORT` entry, else its IP address (checked against the certificate's IPs).
    pub sni: Option<String>,
    pub options: PeerOptions,
    /// Tells apart pooled connections that Pingora's reuse key would mix (e.g. another CA).
    pub group_key: u64,
}

impl Default for PeerTemplate {
    fn default() -> Self {
        PeerTemplate {
            sni: None,
            options: PeerOptions::new(),
            group_key: 0,
        }
    }
}

impl Transport {
    /// Cleartext HTTP/1.1: what a group without `protocol` and `tls` gets.
    pub fn plain() -> Transport {
        Transport {
            protocol: Protocol::H1,
            tls: false,
            peer: PeerTemplate::default(),
        }
    }

    /// Prepared by the config compiler.
    pub fn new(protocol: Protocol, tls: bool, peer: PeerTemplate) -> Transport {
        Transport {
            protocol,
            tls,
            peer,
        }
    }

    /// The prepared peer of `target`: built once per target (at compile, or when a name's
    /// addresses change), cloned per attempt.
    pub fn peer_for(&self, target: &Target) -> HttpPeer {
        let sni = if !self.tls {
            String::new()
        } else if let Some(sni) = &self.peer.sni {
            sni.clone()
        } else if let Some(host) = &target.host {
            host.to_string()
        } else {
            // The IP address: rustls then checks the certificate's IP addresses (an empty
            // SNI would make Pingora skip verification altogether).
            target.addr.ip().to_string()
        };
        let mut peer = HttpPeer::new(target.addr, self.tls, sni);
        peer.options = self.peer.options.clone();
        // dyegate takes the hop-by-hop fields off itself, in one pass
        // (`downstream/hop_by_hop.rs`, from `upstream_request_filter`).
        peer.options.http_upstream_request_policy = HttpUpstreamRequestPolicy::preserve();
        peer.group_key = self.peer.group_key;
        peer
    }
}
