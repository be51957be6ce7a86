//! The admin API: JSON over HTTP on the admin listener (loopback unless a token is configured).
//! Served by Pingora so the listener is inherited across binary upgrades like the proxy's, and
//! behind the proxy listeners' connection handling (`downstream::BoundedApp`, `admin.limits`).

mod api;
pub mod auth;
mod body;
pub mod client;
pub mod explain_json;
pub mod live;
mod mirrors;
mod origin;
mod rollback_body;
mod rollouts;
mod routes_json;
mod ui;
mod upstreams_json;

pub use api::AdminApi;
pub use body::BodyDeadline;
