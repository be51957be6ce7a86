//! Per-target health, outside the routing table: what active checks and real traffic say about
//! each target address, kept in a `dashmap` keyed by address so that it survives reloads,
//! rollbacks and upgrades-in-place of the table (a target that stays keeps its state; a new one
//! starts healthy; a removed one is forgotten and its checks stop).
//!
//! - [`registry`]: the map, the per-group in-flight counts, and [`HealthView`], the cheap
//!   read-only view the routing decision is given.
//! - [`target`]: one target's state and its transitions (checks, passive ejection).
//! - [`probe`]: one active check (TCP connect or HTTP GET) — the only I/O here.
//! - [`checker`]: the Pingora background service that runs the checks, at most one in flight
//!   per target, and follows the table's targets.

pub mod checker;
pub mod probe;
pub mod registry;
pub mod target;

pub use checker::HealthService;
pub use registry::{GroupLoad, HealthRegistry, HealthView};
pub use target::{Attempt, Ejection, LastCheck, TargetRecord, TargetState};
