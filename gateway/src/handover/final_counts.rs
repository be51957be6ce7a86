//! The background service that takes what the old process counted after it wrote its state (the
//! requests it still answered while it drained): written when it exits, for the process serving
//! then. Until it arrives, the scrape is short by those counts (a bounded gap, the old
//! process's drain); when the old process dies without writing them, they are lost.

use super::Handover;
use async_trait::async_trait;
use log::info;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(200);

pub struct FinalCounts(pub Arc<Handover>);

#[async_trait]
impl BackgroundService for FinalCounts {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(from) = self.0.predecessor() else {
            return;
        };
        let me = std::process::id();
        loop {
            if let Some(f) = super::file::take_final(self.0.state_dir(), from, me) {
                self.0.carry(&f.counters);
                info!("handover: the counts pid {from} made while it drained are added");
                return;
            }
            // Gone without leaving them (or left them for another process): nothing comes.
            if !crate::upgrade::running::alive(from) {
                if let Some(f) = super::file::take_final(self.0.state_dir(), from, me) {
                    self.0.carry(&f.counters);
                }
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
