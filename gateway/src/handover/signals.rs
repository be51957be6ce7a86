//! Pingora's shutdown signals with one step added: on SIGQUIT, the handover state is written
//! before Pingora sends the listening sockets, so the new process, once it has them, finds the
//! state complete. SIGTERM and SIGINT are Pingora's own (graceful stop, fast stop).

use super::Handover;
use async_trait::async_trait;
use log::error;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use std::sync::Arc;
use tokio::signal::unix::{signal, Signal, SignalKind};

pub struct HandoverSignals {
    handover: Arc<Handover>,
}

impl HandoverSignals {
    pub fn new(handover: Arc<Handover>) -> Self {
        HandoverSignals { handover }
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
                let handover = self.handover.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || handover.before_upgrade()).await {
                    error!("handover: writing the state failed: {e}");
                }
                ShutdownSignal::GracefulUpgrade
            }
            _ = next(SignalKind::terminate(), "SIGTERM") => ShutdownSignal::GracefulTerminate,
            _ = next(SignalKind::interrupt(), "SIGINT") => ShutdownSignal::FastShutdown,
        }
    }
}
