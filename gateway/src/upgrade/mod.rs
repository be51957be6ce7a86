//! `dyegate upgrade`: replace the running binary without dropping a connection, using Pingora's
//! socket handover, with the checks Pingora leaves out.
//!
//! - [`command`]: the command's steps, from finding the running process to its exit.
//! - [`binary`]: the new binary, read once; with `--expect-sha256`, run from a sealed copy.
//! - [`running`]: the running process: pid file, liveness, the admin address's answer.
//! - [`lock`]: one upgrade at a time.
//! - [`standby`]: the old process after the handover: holds the sockets, watches the new one,
//!   reverts a failing one.
//! - [`watch`]: the judgement of the new process (pure).
//! - [`sockets`]: the listening sockets held during the watch, sent back on a revert.
//! - [`verdict`]: how the watch ended, in the audit log.

pub mod binary;
pub mod command;
mod lock;
pub mod running;
pub mod sockets;
pub mod standby;
pub mod verdict;
pub mod watch;

pub use command::{upgrade, UpgradeArgs};
