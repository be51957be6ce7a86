//! Binary upgrades under load, and the upgrades dyegate refuses.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod handover;
mod refusals;
mod revert;
mod state;
mod verified;
