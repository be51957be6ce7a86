//! The HTTPS flavour of [`Upstream`](crate::Upstream): the same echo behind a TLS handshake
//! (rustls, ALPN `h2` and `http/1.1`), serving a [`Leaf`](crate::certs::Leaf) certificate.

use std::sync::Arc;

use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::record::Recorder;
use super::server::serve_connection;
use crate::certs::Leaf;
use crate::server_thread::accept_each;

/// The acceptor of an HTTPS upstream serving `leaf`.
pub(crate) fn acceptor(leaf: &Leaf) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.cert_der.clone()], leaf.key_der())
        .expect("a certificate and key that match");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// Serves `listener` over TLS for as long as it is polled. A failed handshake (a client that
/// refused the certificate) is counted as a connection and then dropped.
pub(crate) async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    name: Arc<str>,
    recorder: Arc<Recorder>,
) {
    accept_each(listener, |stream| {
        recorder.connection_accepted();
        let (acceptor, name, recorder) =
            (acceptor.clone(), Arc::clone(&name), Arc::clone(&recorder));
        tokio::spawn(async move {
            match acceptor.accept(stream).await {
                Ok(tls) => serve_connection(tls, name, recorder, None).await,
                Err(_) => recorder.handshake_failed(),
            }
        });
    })
    .await
}
