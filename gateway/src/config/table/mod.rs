//! The routing table's text: `routes.yaml`'s serde model ([`model`]), decoded field by field
//! when an entry is broken ([`by_field`]), validated with every error collected ([`validate`]),
//! compiled into the typed [`RouteTable`](crate::routing::RouteTable) ([`compile`] and its
//! sections), and compared version to version ([`diff`]); the pipeline that runs them
//! ([`pipeline`]), reusing a previous version's unchanged entries ([`incremental`]); the rollouts'
//! plans ([`compile_rollout`]) and a table with their weights set over it ([`overrides`]).

pub mod by_field;
pub mod compile;
pub mod compile_containment;
pub mod compile_limits;
pub mod compile_match;
pub mod compile_mirror;
pub mod compile_rollout;
pub mod compile_target;
pub mod compile_transport;
pub mod containment;
pub mod diff;
pub mod diff_split;
pub mod incremental;
pub mod mirror;
pub mod model;
pub mod overrides;
pub mod pipeline;
pub mod rollout;
pub mod rollout_hooks;
pub mod rollout_shadow;
pub mod upstream_transport;
pub mod validate;

#[cfg(test)]
mod tests_containment;
#[cfg(test)]
mod tests_mirror;
#[cfg(test)]
mod tests_rollout;
#[cfg(test)]
mod tests_transport;
