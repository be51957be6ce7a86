//! Where routing tables come from besides the routes file (whose watcher is in `reload/`):
//! etcd, for a fleet of gateways on one table. Each source only produces candidates; the one
//! commit path in `reload/` applies them.
//!
//! - [`layout`]: the keys of a table in etcd, and routes.yaml text assembled from them.
//! - [`store`]: reading and writing tables in etcd (gateway and CLI).
//! - [`etcd`]: the gateway's list-then-watch service, one candidate per revision.
//! - [`status`]: what `/status` and the metrics say about the source.
//! - [`fleet`]: the CLI's `push`, `pull`, `diff etcd:` and `rollback --fleet`.

pub mod etcd;
pub mod fleet;
pub mod layout;
pub mod status;
pub mod store;
