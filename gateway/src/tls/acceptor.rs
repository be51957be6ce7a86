//! The TLS handshake of an HTTPS listener, done by dyegate's own connection handling
//! ([`crate::downstream::BoundedApp`]) rather than by Pingora's listener: Pingora 0.9 does it
//! before the app sees the connection, under a fixed 60 s timeout, outside any connection cap
//! and without telling anyone how it ended (docs/pingora-upstream.md). Here it runs after the
//! connection is admitted, under `tls.handshake_timeout_ms`, and every outcome is counted.

use super::certificates::Certificates;
use super::metrics::{Handshake, TlsMetrics};
use super::resolver::SniResolver;
use crate::config::settings::tls::TlsVersion;
use log::debug;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::TlsStream;
use rustls::ServerConfig;
use std::sync::Arc;
use std::time::Duration;

/// Accepts TLS on a plain connection with the live certificate set.
pub struct TlsAcceptor {
    acceptor: Acceptor,
    timeout: Duration,
    metrics: TlsMetrics,
}

impl TlsAcceptor {
    /// The rustls settings of `tls:` (versions, ALPN) around a resolver over the live set.
    pub fn new(certificates: &Certificates) -> TlsAcceptor {
        let settings = certificates.settings();
        let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let resolver = Arc::new(SniResolver::new(certificates.table()));
        let mut config = ServerConfig::builder_with_provider(super::crypto_provider())
            .with_protocol_versions(versions)
            // Cannot fail: both versions are supported by the provider's default suites.
            .unwrap_or_else(|e| panic!("TLS versions {versions:?}: {e}"))
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        // Stateless resumption: tickets under the keys of `tls.session_tickets`.
        config.ticketer = certificates.tickets();
        // The server's cipher suite order (the provider's: AES-GCM before ChaCha20, strongest
        // first), not the client's.
        config.ignore_client_order = true;
        config.alpn_protocols = if settings.h2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        TlsAcceptor {
            acceptor: Acceptor::from_server_config(Arc::new(config)),
            timeout: settings.handshake_timeout,
            metrics: certificates.metrics().clone(),
        }
    }

    /// The handshake under `handshake_timeout_ms`; `None`: failed or too slow (counted, and the
    /// connection is dropped).
    pub async fn handshake(&self, stream: L4Stream) -> Option<TlsStream<L4Stream>> {
        match tokio::time::timeout(self.timeout, self.acceptor.tls_handshake(stream)).await {
            Ok(Ok(tls)) => {
                self.metrics.handshake(Handshake::Ok);
                Some(tls)
            }
            Ok(Err(e)) => {
                debug!("TLS handshake failed: {e}");
                self.metrics.handshake(Handshake::Error);
                None
            }
            Err(_) => {
                debug!("TLS handshake not done within {:?}", self.timeout);
                self.metrics.handshake(Handshake::Timeout);
                None
            }
        }
    }
}
