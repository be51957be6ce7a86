//! The routing table's text: `routes.yaml`'s serde model ([`model`]), decoded field by field
//! when an entry is broken ([`by_field`]), validated with every error collected ([`validate`]),
//! compiled into the typed [`RouteTable`](crate::routing::RouteTable) ([`compile`] and its
//! sections), and compared version to version ([`diff`]). The pipeline that runs them, and the
//! incremental reuse of a previous version, are in the parent module.

pub mod by_field;
pub mod compile;
pub mod compile_containment;
pub mod compile_limits;
pub mod compile_rollout;
pub mod compile_target;
pub mod compile_transport;
pub mod containment;
pub mod diff;
pub mod diff_split;
pub mod model;
pub mod overrides;
pub mod rollout;
pub mod upstream_transport;
pub mod validate;

#[cfg(test)]
mod tests_containment;
#[cfg(test)]
mod tests_rollout;
#[cfg(test)]
mod tests_transport;
