//! Process lifecycle around Pingora's shutdown and upgrade sequence: counting requests in
//! flight, draining keep-alive connections at handover, and exiting as soon as nothing is left.
//!
//! Pingora 0.9, on SIGQUIT, sends the listening sockets to the new process, keeps accepting for a
//! fixed 5 s, broadcasts shutdown, then sleeps the whole `grace_period_seconds` even when no
//! connection is left. dyegate drives it from the outside: from the moment the handover starts,
//! every response carries `Connection: close` (clients reconnect, and reach the new process);
//! once shutdown is broadcast, the process exits as soon as no request is in flight, or when the
//! grace period is over, whichever comes first.

//!
//! - [`drain`]: requests in flight, `Connection: close` at handover, exit once drained.
//! - [`pid_file`]: the pid file of the serving process, in the foreground too.
//! - [`sighup`]: SIGHUP remembered from process start until the reload trigger listens.
//! - [`listen_check`]: the addresses of a fresh start are free, said at once when not.

mod drain;
pub mod listen_check;
mod pid_file;
mod sighup;

pub use drain::{DrainService, InFlight, Lifecycle};
pub use pid_file::PidFileService;
pub use sighup::{install_early_sighup_handler, take_early_sighup};
