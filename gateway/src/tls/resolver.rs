//! The per-handshake certificate choice rustls asks for: the SNI name of the client hello
//! looked up in the current [`SniTable`]. Reading the table is one atomic load, so a reload is
//! seen by the next handshake and connections already established keep what they got.

use super::sni::SniTable;
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

#[derive(Debug)]
pub struct SniResolver {
    table: Arc<ArcSwap<SniTable>>,
}

impl SniResolver {
    pub fn new(table: Arc<ArcSwap<SniTable>>) -> Self {
        SniResolver { table }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.load();
        table.lookup(hello.server_name()).map(|c| c.key.clone())
    }
}
