//! The etcd-backed fleet: tables pushed to etcd, and etcd outages.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod auth;
mod empty;
mod outage;
mod rollouts;
mod shadow;
mod source;
mod storm;
mod values;
mod version;
