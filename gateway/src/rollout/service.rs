//! The background service that judges every rollout once a second.

use super::controller::Controller;
use super::steps::Steps;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// How often the gates are judged.
pub const TICK: Duration = Duration::from_secs(1);

pub struct RolloutService {
    controller: Arc<Controller>,
    steps: Arc<dyn Steps>,
}

impl RolloutService {
    pub fn new(controller: Arc<Controller>, steps: Arc<dyn Steps>) -> Self {
        RolloutService { controller, steps }
    }
}

#[async_trait]
impl BackgroundService for RolloutService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {
                    // A commit writes history and audit (blocking I/O): off the runtime's threads.
                    let (c, steps) = (self.controller.clone(), self.steps.clone());
                    let _ = tokio::task::spawn_blocking(move || c.tick(&*steps)).await;
                }
            }
        }
    }
}
