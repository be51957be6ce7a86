//! Downstream TLS (gateway.yaml `tls:`): the certificate set, the per-handshake choice by SNI,
//! and its live reload.
//!
//! - [`certificate`]: one `{ cert, key }` entry read from disk and checked.
//! - [`sni`]: the compiled set: exact name, then `*.domain`, then the default.
//! - [`resolver`]: rustls's per-handshake question, answered from the current set.
//! - [`certificates`]: the live set behind an `ArcSwap`: load, all-or-nothing reload, status.
//! - [`watcher`]: the background service that re-reads the files when they change.
//! - [`acceptor`]: the handshake itself, bounded in time and counted.
//! - [`tickets`]: session tickets: rustls's ticketer over keys swapped whole.
//! - [`ticket_keys`]: ticket keys from `tls.session_tickets.key_files`, or made per process.
//! - [`metrics`]: `dyegate_tls_handshakes_total`, `dyegate_tls_certificate_expiry_seconds`.
//!
//! The backend is rustls (Pingora's `rustls` feature) with the `ring` crypto provider: pure
//! Rust plus ring's bundled C and assembly, no system library (docs/tls.md, "Backend: rustls").

pub mod acceptor;
pub mod certificate;
pub mod certificates;
pub mod metrics;
pub mod resolver;
pub mod sni;
pub mod ticket_keys;
pub mod tickets;
pub mod watcher;

pub use acceptor::TlsAcceptor;
pub use certificate::Certificate;
pub use certificates::{Certificates, TlsReload};
pub use metrics::TlsMetrics;
pub use watcher::CertificateService;

use rustls::crypto::CryptoProvider;
use std::sync::Arc;

/// The crypto provider of every TLS object dyegate builds: ring, the one Pingora's rustls
/// backend installs.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A signing key that never signs, for the unit tests of lookups (no key material needed).
#[cfg(test)]
pub(crate) fn test_key() -> Arc<dyn rustls::sign::SigningKey> {
    #[derive(Debug)]
    struct NoKey;
    impl rustls::sign::SigningKey for NoKey {
        fn choose_scheme(
            &self,
            _: &[rustls::SignatureScheme],
        ) -> Option<Box<dyn rustls::sign::Signer>> {
            None
        }
        fn algorithm(&self) -> rustls::SignatureAlgorithm {
            rustls::SignatureAlgorithm::ECDSA
        }
    }
    Arc::new(NoKey)
}
