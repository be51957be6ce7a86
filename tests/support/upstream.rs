//! A real HTTP upstream on loopback, running in-process until dropped.
//!
//! ```no_run
//! let up = dyegate_suite::Upstream::start("stable");
//! let target = up.target(); // "127.0.0.1:PORT", ready for routes.yaml
//! // ... send traffic through the gateway ...
//! assert_eq!(up.requests().len(), 1);
//! ```
//!
//! Every request gets status 200, header `x-upstream: <name>` and a JSON echo
//! `{"upstream", "method", "path", "query", "version", "headers", "body_len", "body_crc"}`,
//! where the body is read streaming and `body_crc` is its CRC-32 (IEEE). Special paths:
//! `/slow?ms=N` answers after N ms, `/status/NNN` with that status, `/stream?chunks=N&size=M`
//! with a chunked body; `Upgrade: websocket` gets a 101 (after `?delay_ms=N` when given) and
//! an echo of every message.
//!
//! [`FaultyUpstream`] breaks for real (hangs, stalls, resets, 500s, lies to health checks).

mod demo_faults;
mod faulty;
mod record;
mod respond;
mod scripted;
mod server;
mod tls;
mod websocket;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use demo_faults::DemoFaults;
pub use faulty::{Fault, FaultyUpstream};
pub use record::{RecordedBody, RecordedRequest, Recorder};
pub use respond::{UpstreamBody, UPSTREAM_HEADER};
pub use scripted::{Script, ScriptedUpstream};
pub use server::{serve, serve_with_faults};

use crate::server_thread::ServerThread;

/// Handle to a running upstream; dropping it stops the server and closes its connections.
pub struct Upstream {
    name: Arc<str>,
    addr: SocketAddr,
    recorder: Arc<Recorder>,
    _thread: ServerThread,
}

impl Upstream {
    /// Starts an upstream called `name` on a fresh loopback port. It accepts connections as soon
    /// as this returns.
    pub fn start(name: &str) -> Self {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), name)
            .expect("binding an upstream on 127.0.0.1:0")
    }

    /// Like [`start`](Self::start), without keeping request heads (only counts connections), so
    /// that a long measurement does not grow the test's memory.
    pub fn start_unrecorded(name: &str) -> Self {
        Self::start_with(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            name,
            Recorder::new(false),
            None,
        )
        .expect("binding an upstream on 127.0.0.1:0")
    }

    /// An HTTPS upstream called `name` serving `leaf` (the same echo, behind TLS with ALPN
    /// `h2` and `http/1.1`; `version` in the echo tells which one the gateway spoke).
    pub fn start_tls(name: &str, leaf: &crate::certs::Leaf) -> Self {
        Self::start_with(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            name,
            Recorder::new(true),
            Some(tls::acceptor(leaf)),
        )
        .expect("binding an upstream on 127.0.0.1:0")
    }

    /// Starts an upstream on `addr` (e.g. again on the address of one that was dropped).
    pub fn start_on(addr: SocketAddr, name: &str) -> std::io::Result<Self> {
        Self::start_with(addr, name, Recorder::new(true), None)
    }

    fn start_with(
        addr: SocketAddr,
        name: &str,
        recorder: Recorder,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let name: Arc<str> = Arc::from(name);
        let recorder = Arc::new(recorder);
        let thread = {
            let (name, recorder) = (Arc::clone(&name), Arc::clone(&recorder));
            ServerThread::start(
                format!("upstream-{name}"),
                listener,
                move |listener| async move {
                    match tls {
                        Some(acceptor) => tls::serve_tls(listener, acceptor, name, recorder).await,
                        None => serve(listener, name, recorder).await,
                    }
                },
            )?
        };
        Ok(Self {
            name,
            addr,
            recorder,
            _thread: thread,
        })
    }

    /// The upstream's name, as sent in `x-upstream`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"127.0.0.1:PORT"`, as written in a `targets` list.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Every request body read so far (length and CRC-32), oldest first.
    pub fn bodies(&self) -> Vec<RecordedBody> {
        self.recorder.bodies()
    }

    /// Every request head received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.recorder.requests()
    }

    /// Number of requests received so far.
    pub fn request_count(&self) -> usize {
        self.recorder.requests().len()
    }

    /// The errors connections ended with so far (a request hyper could not parse, a reset, ...).
    pub fn connection_errors(&self) -> Vec<String> {
        self.recorder.connection_errors()
    }

    /// Connections accepted so far (keep-alive reuse keeps this small).
    pub fn connections(&self) -> usize {
        self.recorder.connections()
    }

    /// TLS handshakes that failed so far ([`Self::start_tls`] only).
    pub fn handshake_failures(&self) -> usize {
        self.recorder.handshake_failures()
    }
}
