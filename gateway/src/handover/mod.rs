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
//! - [`counters`]: counters and histograms carried sample by sample into every scrape.
//! - [`final_counts`]: what the old process counted while it drained, taken when it exits.
//! - [`tickets`]: session ticket keys the process made.

pub mod counters;
pub mod file;
pub mod final_counts;
pub mod format;
pub mod process;
pub mod signals;
pub mod tickets;

pub use final_counts::FinalCounts;
pub use process::{Handover, Outgoing, Parts};
pub use signals::HandoverSignals;
