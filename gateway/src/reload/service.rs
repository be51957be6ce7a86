//! The reload triggers that run in the background: SIGHUP and file changes (debounced). Runs as
//! a Pingora background service so it starts after daemonisation and stops with the server.

use super::reloader::Reloader;
use super::trigger::Trigger;
use super::watcher::{Fingerprint, RoutesWatcher};
use crate::lifecycle::Lifecycle;
use crate::tls::Certificates;
use async_trait::async_trait;
use log::{info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

pub struct ReloadService {
    reloader: Arc<Reloader>,
    lifecycle: Arc<Lifecycle>,
    watch: bool,
    debounce: Duration,
    /// The HTTPS listeners' certificates: SIGHUP re-reads them too.
    certificates: Option<Arc<Certificates>>,
    /// gateway.yaml: SIGHUP re-reads it and applies what can change live.
    gateway: Option<Arc<super::GatewayReload>>,
}

impl ReloadService {
    pub fn new(
        reloader: Arc<Reloader>,
        lifecycle: Arc<Lifecycle>,
        watch: bool,
        debounce: Duration,
    ) -> Self {
        ReloadService {
            reloader,
            lifecycle,
            watch,
            debounce,
            certificates: None,
            gateway: None,
        }
    }

    /// SIGHUP also re-reads these certificates (reported on their own: a certificate error
    /// does not fail the routes reload, nor the reverse).
    pub fn with_certificates(mut self, certificates: Option<Arc<Certificates>>) -> Self {
        self.certificates = certificates;
        self
    }

    /// SIGHUP also re-reads gateway.yaml.
    pub fn with_gateway(mut self, gateway: Arc<super::GatewayReload>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// SIGHUP: gateway.yaml, the routes file, then the certificates.
    async fn sighup(&self) {
        if let (Some(g), false) = (self.gateway.clone(), self.lifecycle.is_draining()) {
            if let Err(e) = tokio::task::spawn_blocking(move || g.reload()).await {
                warn!("gateway.yaml reload task failed: {e}");
            }
        }
        self.run(Trigger::Sighup).await;
        let Some(certs) = self.certificates.clone() else {
            return;
        };
        if self.lifecycle.is_draining() {
            return;
        }
        if let Err(e) = tokio::task::spawn_blocking(move || certs.reload(&Trigger::Sighup)).await {
            warn!("certificate reload task failed: {e}");
        }
    }

    /// Whether the routes file on disk is not what the running table was compiled from.
    fn file_differs(&self) -> bool {
        let running = self.reloader.active().load().sha256.clone();
        // Unreadable (deleted since the startup load) differs too: the reload reports it.
        std::fs::read(self.reloader.routes_path())
            .map_or(true, |b| crate::stamp::sha256_hex(&b) != running)
    }

    async fn run(&self, trigger: Trigger) {
        // A process handing over leaves routing changes to its successor: two processes
        // applying the same edit would record two versions.
        if self.lifecycle.is_draining() {
            info!(
                "draining: {} reload left to the new process",
                trigger.kind()
            );
            return;
        }
        let r = self.reloader.clone();
        if let Err(e) =
            tokio::task::spawn_blocking(move || r.reload(trigger, Default::default())).await
        {
            warn!("reload task failed: {e}");
        }
    }
}

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("cannot handle SIGHUP: {e}");
                None
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let path = self.reloader.routes_path().to_path_buf();
        let watcher = if self.watch {
            match RoutesWatcher::new(&path, tx) {
                Ok(w) => {
                    info!("watching {} for changes", path.display());
                    Some(w)
                }
                Err(e) => {
                    warn!(
                        "cannot watch {}: {e}; reload with SIGHUP or the admin API",
                        path.display()
                    );
                    None
                }
            }
        } else {
            None
        };
        // What the startup load saw, not what is there now: a save in between must be seen.
        let mut seen = self.reloader.loaded_fingerprint();
        // SIGHUPs that arrived before `hup` was listening were remembered by the early handler.
        if crate::lifecycle::take_early_sighup() {
            info!(
                "SIGHUP received during startup: reloading {}",
                path.display()
            );
            // Taken before the reload reads the file: an edit saved while it runs is seen.
            seen = Fingerprint::of(&path);
            self.sighup().await;
        }
        // A save between the startup load and the watch above raised no event: without this
        // catch-up it would wait for the next one. (Same bytes saved again: a no-op, as always.)
        if watcher.is_some() && (Fingerprint::of(&path) != seen || self.file_differs()) {
            info!("{} changed during startup: reloading", path.display());
            // It may still be being written: the same quiet period as any other file event.
            while let Ok(Some(())) = tokio::time::timeout(self.debounce, rx.recv()).await {}
            seen = Fingerprint::of(&path);
            self.run(Trigger::File).await;
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    info!("SIGHUP: reloading {}", path.display());
                    // Taken before the reload reads the file, as for a file event: taken after,
                    // it would be the fingerprint of an edit saved just after the reload read
                    // the file, and that edit's event would then be dropped as seen.
                    seen = Fingerprint::of(&path);
                    self.sighup().await;
                }
                Some(()) = rx.recv() => {
                    // Debounce: wait for a quiet period so a burst of writes is one reload.
                    while let Ok(Some(())) = tokio::time::timeout(self.debounce, rx.recv()).await {}
                    let now = Fingerprint::of(&path);
                    if now != seen {
                        seen = now;
                        self.run(Trigger::File).await;
                    }
                }
            }
        }
    }
}
