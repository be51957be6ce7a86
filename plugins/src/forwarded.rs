//! The client's address behind proxies, and the forwarding headers of the upstream request
//! (`X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, RFC 7239 `Forwarded`,
//! `X-Real-IP`), without I/O.
//!
//! One policy, [`Forwarding`] (gateway.yaml `forwarded`), answers both questions:
//! - which address is the client's ([`Forwarding::client`]): the peer's (the TCP peer, or the
//!   source a PROXY protocol header named), unless the peer is a trusted proxy: then the
//!   rightmost `X-Forwarded-For` address that is not one;
//! - what the forwarding headers of the upstream request become ([`Forwarding::edits`]): set
//!   from scratch for an untrusted peer (what it sent is dropped), extended for a trusted one.

mod client;
mod headers;

pub use client::{ClientAddr, MAX_FORWARDED_ENTRIES, MAX_FORWARDED_ENTRY_LEN};
pub use headers::{
    append_value, Edit, Edits, HeaderSet, Hop, Proto, FORWARDED, X_FORWARDED_FOR, X_FORWARDED_HOST,
    X_FORWARDED_PROTO, X_REAL_IP,
};

use crate::dye_tag::canonical;
use ipnet::IpNet;
use std::net::IpAddr;

/// gateway.yaml `forwarded`, compiled: the proxies whose forwarding headers are believed, and
/// the headers the gateway writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarding {
    trusted: Vec<IpNet>,
    headers: HeaderSet,
}

impl Forwarding {
    /// `trusted`: `forwarded.trusted_sources` (empty: no peer is a trusted proxy).
    pub fn new(trusted: Vec<IpNet>, headers: HeaderSet) -> Self {
        Forwarding { trusted, headers }
    }

    pub fn trusted(&self) -> &[IpNet] {
        &self.trusted
    }

    pub fn headers(&self) -> HeaderSet {
        self.headers
    }

    /// Whether `ip` is a trusted proxy. Nobody is when the list is empty (the default).
    pub fn trusts(&self, ip: Option<IpAddr>) -> bool {
        match ip {
            Some(ip) if !self.trusted.is_empty() => {
                let ip = canonical(ip);
                self.trusted.iter().any(|n| n.contains(&ip))
            }
            _ => false,
        }
    }
}
