//! What requests see: the compiled table and the version it was applied as, swapped whole
//! behind an `ArcSwap` by the one commit path (`reload::commit`) and loaded once per request.

use super::table::RouteTable;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// A table as applied. `M` is the per-table metric handles the layers above attach to it
/// (`telemetry::TableMetrics`): a parameter, so that routing depends on nothing above it.
pub struct ActiveTable<M> {
    pub table: Arc<RouteTable>,
    pub version: u64,
    /// A local change on a gateway that follows etcd: its sequence under `version` (else 0).
    pub local: u32,
    pub sha256: String,
    pub metrics: Arc<M>,
}

/// The handle requests load the table from.
pub type SharedTable<M> = Arc<ArcSwap<ActiveTable<M>>>;
