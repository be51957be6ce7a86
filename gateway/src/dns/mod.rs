//! Upstream targets by DNS name (`NAME:PORT` in routes.yaml): every A/AAAA address of a name is
//! a target, re-resolved in the background. The addresses live outside the immutable routing
//! table, in the [`AddressBook`](crate::routing::AddressBook) a request reads once: a change of
//! addresses is no new routing version, and a reload that keeps a name keeps its addresses.
//!
//! - [`resolver`]: the lookups (hickory-resolver, tokio) — the only I/O here.
//! - [`names`]: every name's addresses, last answer and last failure; writes the book.
//! - [`schedule`]: when a name is asked again (interval and TTL), when a failure is logged.
//! - [`diff`]: the addresses an answer added and removed.
//! - [`service`]: the background service that follows the table and asks the names.
//! - [`startup`]: the first lookups before serving, and `dyegate check --resolve`.
//! - [`prefetch`]: names new to a table asked before it serves (at start and on a reload).

pub mod diff;
pub mod names;
pub mod prefetch;
pub mod resolver;
pub mod schedule;
pub mod service;
pub mod startup;

pub use names::{DnsNames, NameView};
pub use prefetch::Prefetch;
pub use service::DnsService;
