//! The process settings: `gateway.yaml`, from its serde model ([`model`]) to the checked,
//! typed [`gateway::Gateway`] that the server, `main` and upgrade read. One file per section.

pub mod admin_tokens;
pub mod dns;
pub mod forwarded;
pub mod gateway;
pub mod limits;
pub mod listen;
pub mod live;
pub mod logging;
pub mod model;
pub mod process;
pub mod runtime;
pub mod source;
pub mod tls;
pub mod tls_session;
pub mod tracing;
pub mod upgrade;

#[cfg(test)]
pub(crate) mod tests_files;
#[cfg(test)]
mod tests_forwarded;
#[cfg(test)]
mod tests_gateway;
