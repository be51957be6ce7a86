//! The addresses the DNS names of the tables' targets resolve to now: state outside the
//! immutable table, like target health. The DNS service (`crate::dns`) is its one writer and
//! swaps the whole book on every change; a request reads it once, through one `ArcSwap` load.
//! Data only: no I/O here.

use arc_swap::{ArcSwap, Guard};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

/// Every known host name and its addresses, sorted (an empty list: asked, nothing known yet).
/// A snapshot: a change makes a new one ([`Addresses::with`]), so the identity of a host's list
/// (`Arc::ptr_eq`) says whether it changed.
#[derive(Debug, Default, Clone)]
pub struct Addresses {
    hosts: foldhash::HashMap<Arc<str>, Arc<[IpAddr]>>,
}

impl Addresses {
    /// The addresses `host` resolves to, as last known; `None` for a host never answered.
    pub fn get(&self, host: &str) -> Option<&Arc<[IpAddr]>> {
        self.hosts.get(host)
    }

    /// A copy with `host` set to `addrs`.
    pub fn with(&self, host: &Arc<str>, addrs: Arc<[IpAddr]>) -> Addresses {
        let mut next = self.clone();
        next.hosts.insert(host.clone(), addrs);
        next
    }

    /// A copy with only the hosts `keep` says are still used.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Addresses {
        Addresses {
            hosts: (self.hosts.iter())
                .filter(|(h, _)| keep(h))
                .map(|(h, a)| (h.clone(), a.clone()))
                .collect(),
        }
    }

    /// The snapshot that knows no name (tables without DNS names, tests, benches).
    pub fn none() -> &'static Arc<Addresses> {
        static NONE: LazyLock<Arc<Addresses>> = LazyLock::new(Arc::default);
        &NONE
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// The handle requests, the health checker and the admin API read the addresses through.
#[derive(Debug, Default)]
pub struct AddressBook {
    now: ArcSwap<Addresses>,
}

impl AddressBook {
    /// A book that knows no name (tables without DNS names, tests, benches).
    pub fn empty() -> &'static AddressBook {
        static EMPTY: LazyLock<AddressBook> = LazyLock::new(AddressBook::default);
        &EMPTY
    }

    /// The addresses now: one load per request (or per pass of a background service), kept for
    /// as long as the caller needs one consistent view.
    pub fn load(&self) -> Guard<Arc<Addresses>> {
        self.now.load()
    }

    pub fn load_full(&self) -> Arc<Addresses> {
        self.now.load_full()
    }

    /// Replaces the addresses (the DNS service, after an answer that changed something).
    pub fn store(&self, addresses: Addresses) {
        self.now.store(Arc::new(addresses));
    }
}
