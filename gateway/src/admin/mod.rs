//! The admin API: JSON over HTTP on the admin listener (loopback unless a token is configured).
//! Served by Pingora so the listener is inherited across binary upgrades like the proxy's.

mod api;
pub mod auth;
pub mod client;
mod rollback_body;
mod rollouts;
mod routes_json;
mod upstreams_json;

pub use api::AdminApi;
