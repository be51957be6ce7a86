//! Watching the certificate and key files: their directories are watched (not the files'
//! inodes), so rename-writes and a Kubernetes Secret's `..data` symlink swap are seen, the same
//! way as routes.yaml ([`crate::reload::RoutesWatcher`]). A burst of events is debounced into
//! one read, and a read happens only when a file's fingerprint changed.

use super::certificates::Certificates;
use crate::lifecycle::Lifecycle;
use crate::reload::watcher_concerns;
use crate::reload::Trigger;
use async_trait::async_trait;
use log::{info, warn};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// The background service that re-reads the certificates when their files change.
pub struct CertificateService {
    certificates: Arc<Certificates>,
    lifecycle: Arc<Lifecycle>,
    debounce: Duration,
}

impl CertificateService {
    pub fn new(
        certificates: Arc<Certificates>,
        lifecycle: Arc<Lifecycle>,
        debounce: Duration,
    ) -> Self {
        CertificateService {
            certificates,
            lifecycle,
            debounce,
        }
    }

    /// A re-read if a file changed since the last one, off the async workers.
    async fn reload_if_changed(&self) {
        if self.lifecycle.is_draining() {
            return;
        }
        let certs = self.certificates.clone();
        let read = tokio::task::spawn_blocking(move || certs.reload_if_changed(&Trigger::File));
        if let Err(e) = read.await {
            warn!("certificate reload task failed: {e}");
        }
    }
}

/// One watch over every directory holding a certificate or key file.
fn watch(files: Vec<PathBuf>, events: UnboundedSender<()>) -> notify::Result<RecommendedWatcher> {
    let with_dirs: Vec<(PathBuf, PathBuf)> = (files.into_iter())
        .map(|f| {
            let dir = f
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            (f, dir)
        })
        .collect();
    let mut dirs: Vec<PathBuf> = with_dirs.iter().map(|(_, d)| d.clone()).collect();
    dirs.sort();
    dirs.dedup();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(ev) if ev.kind.is_access() => {}
            Ok(ev) => {
                if with_dirs.iter().any(|(f, d)| watcher_concerns(&ev, f, d)) {
                    let _ = events.send(());
                }
            }
            Err(e) => warn!("certificate file watch error: {e}"),
        })?;
    for d in &dirs {
        watcher.watch(d, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

/// Waits for a quiet period after an event, so that a burst of writes is one read.
async fn settle(rx: &mut UnboundedReceiver<()>, debounce: Duration) {
    while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
}

#[async_trait]
impl BackgroundService for CertificateService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (tx, mut rx) = unbounded_channel();
        let _watcher = match watch(self.certificates.files(), tx) {
            Ok(w) => {
                info!("watching the certificate files for changes");
                w
            }
            Err(e) => {
                warn!("cannot watch the certificate files: {e}; reload them with SIGHUP or the admin API");
                return;
            }
        };
        // A write between the startup read and the watch above raised no event.
        self.reload_if_changed().await;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(()) = rx.recv() => {
                    settle(&mut rx, self.debounce).await;
                    self.reload_if_changed().await;
                }
            }
        }
    }
}
