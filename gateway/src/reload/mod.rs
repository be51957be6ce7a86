//! Changes of the routing table: every source (routes file, SIGHUP, admin API, etcd revision,
//! rollback, rollout step) is one [`attempt`](attempt) that builds a [`Candidate`], and one
//! commit path applies every candidate (swap, counters, diff, history, audit).
//!
//! - [`trigger`]: what started a change, typed into history and audit.
//! - [`attempt`]: the steps every source shares; a source only builds.
//! - [`sources`], [`rollout_commit`]: the build steps of each source.
//! - [`overlay`]: the weights running rollouts set over every table.
//! - [`candidate`]: a compiled table ready to commit, with what it carries over.
//! - [`reloader`]: the running version and what readers see.
//! - [`commit`]: the one commit path.
//! - [`report`]: the result of an attempt (the audit record).
//! - [`history`], [`audit`]: kept versions in `state_dir`; the audit log.
//! - [`version_id`]: the name of a kept version (`41`, or `41.1` for a local change).
//! - [`watcher`], [`service`]: file changes and SIGHUP, debounced, as triggers.

mod attempt;
mod audit;
mod candidate;
mod commit;
mod gateway_yaml;
mod history;
mod overlay;
mod record;
mod reloader;
mod report;
mod rollout_commit;
mod service;
mod sources;
mod trigger;
mod version_id;
mod watcher;

pub use audit::AuditLog;
pub use candidate::Candidate;
pub use gateway_yaml::{GatewayReload, GatewayReport, LiveHandles};
pub use history::{History, Limits as HistoryLimits, VersionInfo};
pub use overlay::Overlay;
pub use reloader::{Reloader, SourceText, StartAt};
pub use report::{Caller, LastError, Outcome, ReloadReport};
pub use service::ReloadService;
pub use trigger::Trigger;
pub use version_id::VersionId;
pub use watcher::{concerns as watcher_concerns, Fingerprint, RoutesWatcher};
