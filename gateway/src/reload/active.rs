//! What requests see: the compiled table and the version it was applied as. Swapped whole.

use crate::routing::RouteTable;
use std::sync::Arc;

#[derive(Debug)]
pub struct ActiveTable {
    pub table: Arc<RouteTable>,
    pub version: u64,
    pub sha256: String,
}
