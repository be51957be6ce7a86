//! Containing a failing upstream: timeouts, retries, health checks, ejection, the breaker.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod breaker;
mod check;
mod health;
mod retries;
mod stream_idle;
mod timeouts;
