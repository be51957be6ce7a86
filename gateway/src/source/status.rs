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
}

/// The shared state and the settings it is about.
pub struct SourceStatus {
    pub endpoints: Vec<String>,
    pub prefix: String,
    /// This gateway's id in the fleet (`source.etcd.gateway_id`).
    pub gateway_id: String,
    state: Mutex<EtcdState>,
}

impl SourceStatus {
    pub fn new(settings: &EtcdSettings) -> SourceStatus {
        SourceStatus {
            endpoints: settings.endpoints.clone(),
            prefix: settings.prefix.clone(),
            gateway_id: settings.gateway_id.clone(),
            state: Mutex::new(EtcdState::default()),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, EtcdState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> EtcdState {
        self.lock().clone()
    }

    /// The fields `/status` shows: `source: etcd`, `gateway_id`, `connected`, `stale`,
    /// `divergent`, and the details under `etcd`.
    pub fn to_json(&self) -> serde_json::Value {
        let s = self.snapshot();
        serde_json::json!({
            "source": "etcd",
            "gateway_id": self.gateway_id,
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
            },
        })
    }
}
