//! Pingora's shutdown signals with one step added: on SIGQUIT, before Pingora sends the
//! listening sockets, the old process starts its watch of the new one (holding duplicates of
//! the sockets, [`Standby`]) and writes the handover state, so the new process, once it has
//! the sockets, finds the state complete. SIGTERM and SIGINT are Pingora's own (graceful stop,
//! fast stop).

use super::format::HandoverKind;
use super::{Handover, Outgoing};
use crate::lifecycle::Lifecycle;
use crate::upgrade::standby::Standby;
use async_trait::async_trait;
use log::error;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use std::sync::Arc;
use tokio::signal::unix::{signal, Signal, SignalKind};

pub struct HandoverSignals {
    handover: Arc<Handover>,
    standby: Arc<Standby>,
    lifecycle: Arc<Lifecycle>,
}

impl HandoverSignals {
    pub fn new(handover: Arc<Handover>, standby: Arc<Standby>, lifecycle: Arc<Lifecycle>) -> Self {
        HandoverSignals {
            handover,
            standby,
            lifecycle,
        }
    }

    /// Holds the sockets and starts the watch (`upgrade.watch_ms`), then writes the state; from
    /// now on the counters are the new process's to serve, and what this one still counts is
    /// handed on when it exits (after the watch).
    fn before_upgrade(&self) {
        self.lifecycle.hand_over();
        let watch = self.standby.arm();
        self.handover.write(Outgoing {
            kind: HandoverKind::Upgrade,
            reason: None,
            watch,
            extra: Default::default(),
        });
        let handover = self.handover.clone();
        self.lifecycle
            .on_exit(Box::new(move || handover.write_final()));
    }
}

/// A signal stream, or (when it cannot be set up, which the log says) one that never fires.
async fn next(kind: SignalKind, name: &str) {
    let stream: Option<Signal> = match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            error!("cannot listen for {name}: {e}");
            None
        }
    };
    match stream {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

#[async_trait]
impl ShutdownSignalWatch for HandoverSignals {
    async fn recv(&self) -> ShutdownSignal {
        tokio::select! {
            _ = next(SignalKind::quit(), "SIGQUIT") => {
                // Blocking (file reads and writes, a few ms): nothing else runs on this thread.
                self.before_upgrade();
                ShutdownSignal::GracefulUpgrade
            }
            _ = next(SignalKind::terminate(), "SIGTERM") => ShutdownSignal::GracefulTerminate,
            _ = next(SignalKind::interrupt(), "SIGINT") => ShutdownSignal::FastShutdown,
        }
    }
}
