//! Progressive delivery: a route's `rollout` ramps its canary through staged shares of the
//! untagged split while gates judge the canary's own error rate and latency, and takes it back
//! to 0 within about a second of a breach. Every step and abort is a candidate committed
//! through the one attempt (trigger `rollout`): its step is data — weights set over the table
//! whatever its source — never a rewrite of text.
//!
//! - [`plan`]: the plan of a route as the file has it; the weights of each step.
//! - the windows the gates judge are `crate::telemetry::window`: recorded with the metrics, on
//!   the request path, read here.
//! - [`judge`]: the gates' verdicts on a window's figures.
//! - [`machine`]: the state machine (what happens next), pure.
//! - [`shadow`]: the shadow stage before step 1 (state `shadowing`): a mirror to the canary set
//!   over the table, judged on the canary's answers to the copies (`crate::mirror::tally`).
//! - [`state`]: a rollout's state, kept in `state_dir/rollouts.json`.
//! - [`clock`]: the time the controller reads (the wall clock; a hand-moved one in tests).
//! - [`steps`]: what the controller needs of the table's owner (the reloader), handed to it.
//! - [`error`]: why a move or a control did not happen.
//! - [`controller`]: follows the file, judges, commits; [`controls`]: pause, resume, promote,
//!   abort and the status; [`service`]: the once-a-second background service.
//! - [`metrics`]: the `dyegate_rollout_*` families.
//! - [`series`]: the last 15 minutes of each rollout, one point a second, for the live view.
//! - [`fleet`]: the same rollouts for a fleet that follows etcd: state in etcd, one driver.
//! - [`hooks`]: `confirm_step` before each automatic promotion, every transition to the
//!   `events` hook; [`prometheus`]: gates on Prometheus queries. Their HTTP is done by
//!   [`HooksService`], never by the judging thread.

pub mod clock;
pub mod controller;
mod controller_hooks;
mod controller_rollback;
pub mod controls;
pub mod error;
pub mod fleet;
pub mod hooks;
pub mod judge;
pub mod machine;
pub mod metrics;
pub mod plan;
pub mod prometheus;
pub mod series;
pub mod service;
pub mod shadow;
pub mod state;
pub mod steps;

pub use controller::Controller;
pub use controls::Control;
pub use error::RolloutError;
pub use fleet::FleetSteps;
pub use hooks::service::HooksService;
pub use service::RolloutService;
pub use steps::Steps;
