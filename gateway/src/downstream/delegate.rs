//! [`delegate_digests!`]: the digest traits of a stream wrapper, answered by the stream it wraps.
//!
//! Pingora asks a downstream stream for its id, TLS state, timing, proxy and socket digests
//! (`pingora::protocols::IO`). A wrapper that only changes how bytes move ([`super::replay`],
//! [`super::coalesce`]) answers all of them with its `inner` stream's.

/// Implements `UniqueID`, `Ssl`, `GetTimingDigest`, `GetProxyDigest` and `GetSocketDigest` for
/// `$wrapper<S>` by calling its field `inner` (an `S` or a `Box<S>`).
macro_rules! delegate_digests {
    ($wrapper:ident) => {
        impl<S: pingora::protocols::UniqueID> pingora::protocols::UniqueID for $wrapper<S> {
            fn id(&self) -> pingora::protocols::UniqueIDType {
                self.inner.id()
            }
        }

        impl<S: pingora::protocols::Ssl> pingora::protocols::Ssl for $wrapper<S> {
            fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
                self.inner.get_ssl()
            }

            fn get_ssl_digest(&self) -> Option<std::sync::Arc<pingora::protocols::tls::SslDigest>> {
                self.inner.get_ssl_digest()
            }

            fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
                self.inner.selected_alpn_proto()
            }
        }

        impl<S: pingora::protocols::GetTimingDigest> pingora::protocols::GetTimingDigest
            for $wrapper<S>
        {
            fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
                self.inner.get_timing_digest()
            }

            fn get_read_pending_time(&self) -> std::time::Duration {
                self.inner.get_read_pending_time()
            }

            fn get_write_pending_time(&self) -> std::time::Duration {
                self.inner.get_write_pending_time()
            }
        }

        impl<S: pingora::protocols::GetProxyDigest> pingora::protocols::GetProxyDigest
            for $wrapper<S>
        {
            fn get_proxy_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::raw_connect::ProxyDigest>> {
                self.inner.get_proxy_digest()
            }

            fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
                self.inner.set_proxy_digest(digest)
            }
        }

        impl<S: pingora::protocols::GetSocketDigest> pingora::protocols::GetSocketDigest
            for $wrapper<S>
        {
            fn get_socket_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::SocketDigest>> {
                self.inner.get_socket_digest()
            }

            fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
                self.inner.set_socket_digest(digest)
            }
        }
    };
}

pub(crate) use delegate_digests;
