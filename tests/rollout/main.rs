//! Progressive delivery: steps, gates, controls, and the rollout state across reloads and restarts.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod broken_answers;
mod demo_walkthrough;
mod hooks;
mod progress;
mod prometheus_gates;
mod rollback;
mod shadow_stage;
mod state;
mod version_record;
