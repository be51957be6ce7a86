//! Changes of the routing table: triggers build a [`Candidate`], and one commit path applies
//! every candidate (swap, counters, diff, history, audit), whatever its trigger.
//!
//! - [`trigger`]: what started a change, typed into history and audit.
//! - [`candidate`]: a compiled table ready to commit, with what it carries over.
//! - [`reloader`]: the triggers (routes file, rollback) and what readers see.
//! - [`commit`]: the one commit path.
//! - [`report`]: the result of an attempt (the audit record).
//! - [`history`], [`audit`]: kept versions in `state_dir`; the audit log.
//! - [`version_id`]: the name of a kept version (`41`, or `41.1` for a local change).
//! - [`watcher`], [`service`]: file changes and SIGHUP, debounced, as triggers.

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
pub use rollout_commit::{RolloutApplied, RolloutRewrite};
pub use service::ReloadService;
pub use trigger::Trigger;
pub use version_id::VersionId;
pub use watcher::{concerns as watcher_concerns, Fingerprint, RoutesWatcher};
