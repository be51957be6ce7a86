//! The commands that talk to a running gateway through its admin API (`dyegate status`,
//! `reload`, `rollback`, `versions`, `upstreams`, `rollout`): where the API is and which token
//! to send ([`target`], [`token`]), the calls and their exit codes ([`commands`]), and how an
//! answer reads to a person ([`render`]; JSON for scripts, chosen in [`output`]). And
//! [`check`], which checks the files offline; [`explain`], which asks either.

pub mod args;
pub mod check;
pub mod commands;
pub mod exit;
pub mod explain;
pub mod output;
pub mod render;
mod session;
pub mod target;
pub mod token;
pub mod weights_text;
pub mod write_file;

pub use args::AdminArgs;
pub use exit::Exit;
pub use output::Format;
