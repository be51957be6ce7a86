//! One rollout for a fleet of gateways that follow one table in etcd: the plan is in the table
//! (the route's `rollout:` block), the state in etcd, one driver (the gateway holding a
//! lease-bound key) judges the sum of every live gateway's window and writes each move; a move
//! that changes the weights is one etcd revision that every gateway applies as one version.
//!
//! - [`keys`]: where it all lives under the fleet's prefix.
//! - [`record`]: what the keys hold (the step's weights, a gateway's window).
//! - [`weights`]: the steps as every gateway sets them over the table it applies.
//! - [`sum`]: the fleet's window of a step.
//! - [`moves`]: what the driver, a control, and a gateway alone (etcd away) decide; pure.
//! - [`view`]: what a gateway knows of the fleet, for the status and the controls.
//! - [`follow`]: the controller of a gateway that follows the fleet.
//! - [`store`]: the etcd reads and writes; [`service`]: the once-a-second round, with the
//!   controls made on this gateway (`control.rs`) and its judgement alone while etcd is away
//!   (`alone.rs`).

mod alone;
mod control;
pub mod follow;
pub mod keys;
pub mod moves;
pub mod record;
pub mod service;
pub mod store;
pub mod sum;
pub mod view;
pub mod weights;

pub use service::FleetService;
pub use view::FleetView;
pub use weights::FleetSteps;
