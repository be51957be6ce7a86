//! `dyegate upgrade`: replace the running binary without dropping a connection, using Pingora's
//! socket handover, with the checks Pingora leaves out.
//!
//! - [`command`]: the command's steps, from finding the running process to its exit.
//! - [`binary`]: the new binary, read once; with `--expect-sha256`, run from a sealed copy.
//! - [`running`]: the running process: pid file, liveness, the admin address's answer.
//! - [`lock`]: one upgrade at a time.

pub mod binary;
pub mod command;
mod lock;
pub mod running;

pub use command::{upgrade, UpgradeArgs};
