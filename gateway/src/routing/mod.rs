//! The compiled, immutable routing table and its decision function: no I/O, and no state but
//! the weighted round-robin counters of the splits and groups, which each decision advances
//! (atomically; everything else in the table is read only).
//!
//! A [`RouteTable`] is built once per routes.yaml version by `config::table::compile` and shared
//! behind an `ArcSwap`; a request loads it once and asks [`RouteTable::decide`] where to go. What
//! changes without a new table is read through handles beside it: target health
//! ([`TargetHealth`]) and the addresses of DNS names ([`AddressBook`]).

mod active;
mod addresses;
mod carried;
mod conditions;
mod decide;
mod explain;
mod group;
mod health;
mod index;
mod members;
mod mirror;
mod overrides;
mod policy;
mod rate_limit;
mod request_parts;
mod route;
mod shadow;
mod table;
mod transport;

pub use active::{ActiveTable, SharedTable};
pub use addresses::{AddressBook, Addresses};
pub use carried::Carried;
pub use conditions::{decimal, Networks, PathMatch, ValueMatch};
pub use decide::{normalize_host, Decision, Outcome, Reason, RequestInfo, TagAction};
pub use explain::{Explained, Preview, Tried};
pub use group::{Group, GroupId, MembersRef, NamedTarget, TargetEntry};
pub use health::{AllHealthy, TargetHealth};
pub use index::RouteIndex;
pub use members::{Members, Target};
pub use mirror::{default_methods, sampled, Admission, Compare, Mirror, FULL_SHARE};
pub use overrides::{Overrides, RouteOverride, ShadowMirror};
pub use request_parts::Parsed;

/// Largest split weight (keeps the sum of any split far from overflow).
pub const MAX_WEIGHT: u32 = 1_000_000;
pub use policy::{
    CheckKind, GroupPolicy, HealthCheck, Outlier, Retries, RetryOn, RetryReason, Timeouts,
    UnhealthyTag, DEFAULT_IO_TIMEOUT,
};
pub use rate_limit::{KeyOf, LimitKey, RateLimit};
pub use route::{
    Cond, Dye, DyeUpstream, HostMatch, Matcher, Route, Split, StickyKey, TagFallback, TagFrom,
};
pub use shadow::{shadowed, Shadowed};
pub use table::RouteTable;
pub use transport::{PeerTemplate, Protocol, Transport};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_health;
#[cfg(test)]
mod tests_resolved;
