//! What the live view (`/ui/`) draws over time, sampled once a second in the background: every
//! route's traffic ([`crate::telemetry::traffic`]) and every rollout's 15 minutes
//! ([`crate::rollout::series`]). Both are bounded and kept only in memory.

use crate::rollout::Controller;
use crate::telemetry::traffic::Traffic;
use crate::telemetry::window::now_second;
use crate::telemetry::Metrics;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The traffic samples, shared by the sampler and the API (`GET /traffic`).
pub type SharedTraffic = Arc<Mutex<Traffic>>;

/// How often a point is taken.
pub const SAMPLE: Duration = Duration::from_secs(1);

pub struct LiveSampler {
    metrics: Arc<Metrics>,
    rollouts: Arc<Controller>,
    traffic: SharedTraffic,
}

impl LiveSampler {
    pub fn new(metrics: Arc<Metrics>, rollouts: Arc<Controller>, traffic: SharedTraffic) -> Self {
        LiveSampler {
            metrics,
            rollouts,
            traffic,
        }
    }

    fn sample(&self) {
        let totals = self.metrics.pair_totals();
        let mut traffic = self.traffic.lock().unwrap_or_else(|p| p.into_inner());
        traffic.sample(&totals, now_second());
        drop(traffic);
        self.rollouts.sample();
    }
}

#[async_trait]
impl BackgroundService for LiveSampler {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(SAMPLE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => self.sample(),
            }
        }
    }
}
