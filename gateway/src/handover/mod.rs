//! What a process hands to its successor besides the listening sockets (which Pingora moves
//! over the upgrade socket): written by the old process when SIGQUIT arrives, before the
//! sockets move ([`signals`]); taken by the new process once it has the sockets, before it
//! serves ([`Handover::receive`]). Through a file in `state_dir` ([`file`]), in a versioned
//! format ([`format`]): a binary that cannot read it starts fresh with a warning.
//!
//! - [`format`]: the state as written, and its format check.
//! - [`file`]: `state_dir/handover.json`: written privately, taken once.
//! - [`signals`]: SIGQUIT writes the state before the sockets move.
//! - [`process`]: this process's side: what is collected, what is restored, the lineage.

pub mod file;
pub mod format;
pub mod process;
pub mod signals;

pub use process::Handover;
pub use signals::HandoverSignals;
