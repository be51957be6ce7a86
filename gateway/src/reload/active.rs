//! What requests see: the compiled table and the version it was applied as. Swapped whole.

use crate::routing::RouteTable;
use crate::telemetry::TableMetrics;
use std::sync::Arc;

pub struct ActiveTable {
    pub table: Arc<RouteTable>,
    pub version: u64,
    pub sha256: String,
    /// The metric handles of this table's series.
    pub metrics: Arc<TableMetrics>,
}
