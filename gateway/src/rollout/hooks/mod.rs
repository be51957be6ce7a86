//! A rollout's hooks: `confirm_step` (asked before each automatic promotion) and `events`
//! (every transition, as a signed CloudEvents envelope). The machine decides when to ask and
//! what happened; this module does the HTTP, off the judging thread, so that a slow or dead
//! receiver never delays a judgement, an abort or a request.
//!
//! - [`url`] holds the URLs, checked at load.
//! - [`confirm`] holds a confirmation's record and when it is asked again (pure).
//! - [`event`] builds the envelope of a transition (pure); [`sign`] its signature.
//! - [`outbox`] keeps the bounded queues of events waiting, per route, and their backoff.
//! - [`client`] sends one HTTP/1.1 request with a deadline (http or https).
//! - [`service`] is the background service that asks, delivers, and queries Prometheus.
//! - [`metrics`] counts `dyegate_rollout_hook_deliveries_total`.

pub mod client;
pub mod confirm;
pub mod event;
pub mod metrics;
pub mod outbox;
pub mod service;
pub mod sign;
pub mod url;

pub use url::HookUrl;

use std::path::PathBuf;

/// `rollout.hooks`, compiled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hooks {
    pub confirm_step: Option<ConfirmStep>,
    pub events: Option<EventsHook>,
}

/// `rollout.hooks.confirm_step`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmStep {
    pub url: HookUrl,
    pub timeout_ms: u64,
}

/// `rollout.hooks.events`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsHook {
    pub url: HookUrl,
    /// Read when an event is signed (a rotated secret is used from the next event on).
    pub secret_file: Option<PathBuf>,
}
