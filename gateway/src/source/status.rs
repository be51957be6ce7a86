//! What the gateway knows about its etcd source, for `/status` and `dyegate_source_connected`.
//! Written by the source service, read by the admin API; never held across an await.

use crate::config::EtcdSettings;
use serde::Serialize;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Clone, Default, Serialize)]
pub struct EtcdState {
    /// The last list or watch answered, and nothing has failed since.
    pub connected: bool,
    /// Serving the table cached in state_dir, not yet confirmed by etcd (started while etcd was
    /// unreachable).
    pub stale: bool,
    /// A local rollback made this gateway serve something else than the fleet's table.
    pub divergent: bool,
    /// The fleet's revision last seen (of the table, applied or rejected).
    pub revision: Option<u64>,
    /// The last revision rejected by validation, with its errors (cleared when one applies).
    pub rejected_revision: Option<u64>,
    /// Why the connection is down, when it is.
    pub last_connect_error: Option<String>,
    /// Re-lists after a watch was cancelled (compaction) or the connection came back.
    pub relists: u64,
    /// Routes of the served table with a `rollout:` block, which a gateway that follows etcd
    /// does not run (yet): shown as a warning, never silently ignored.
    pub unsupported_rollouts: Vec<String>,
}

/// The shared state and the settings it is about.
pub struct SourceStatus {
    pub endpoints: Vec<String>,
    pub prefix: String,
    state: Mutex<EtcdState>,
}

impl SourceStatus {
    pub fn new(settings: &EtcdSettings) -> SourceStatus {
        SourceStatus {
            endpoints: settings.endpoints.clone(),
            prefix: settings.prefix.clone(),
            state: Mutex::new(EtcdState::default()),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, EtcdState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> EtcdState {
        self.lock().clone()
    }

    /// The fields `/status` shows: `source: etcd`, `connected`, `stale`, `divergent`, and the
    /// details under `etcd`.
    pub fn to_json(&self) -> serde_json::Value {
        let s = self.snapshot();
        let warnings: Vec<String> = (s.unsupported_rollouts.iter())
            .map(|r| format!("route {r} has a `rollout:` block: a gateway that follows etcd does not run rollouts yet (fleet rollouts are not supported); its split is served as written and nothing judges the canary"))
            .collect();
        serde_json::json!({
            "warnings": warnings,
            "source": "etcd",
            "connected": s.connected,
            "stale": s.stale,
            "divergent": s.divergent,
            "etcd": {
                "endpoints": self.endpoints,
                "prefix": self.prefix,
                "revision": s.revision,
                "rejected_revision": s.rejected_revision,
                "last_connect_error": s.last_connect_error,
                "relists": s.relists,
                "unsupported_rollouts": s.unsupported_rollouts,
            },
        })
    }
}
