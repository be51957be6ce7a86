//! The compiled, immutable routing table and its pure decision function (no I/O).
//!
//! A [`RouteTable`] is built once per routes.yaml version by `config::compile` and shared behind
//! an `ArcSwap`; a request loads it once and asks [`RouteTable::decide`] where to go.

mod active;
mod carried;
mod decide;
mod group;
mod health;
mod index;
mod policy;
mod rate_limit;
mod route;
mod shadow;
mod table;
mod transport;

pub use active::{ActiveTable, SharedTable};
pub use carried::Carried;
pub use decide::{normalize_host, Decision, Outcome, Reason, RequestInfo, TagAction};
pub use group::{Group, GroupId, Target};
pub use health::{AllHealthy, TargetHealth};
pub use index::RouteIndex;
pub use policy::{
    CheckKind, GroupPolicy, HealthCheck, Outlier, Retries, RetryOn, RetryReason, Timeouts,
    UnhealthyTag, DEFAULT_IO_TIMEOUT,
};
pub use rate_limit::{KeyOf, LimitKey, RateLimit};
pub use route::{Dye, HostMatch, Matcher, Route, Split, StickyKey, TagFallback};
pub use shadow::{shadowed, Shadowed};
pub use table::RouteTable;
pub use transport::{Protocol, Transport};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_health;
