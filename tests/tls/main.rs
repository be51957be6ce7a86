//! Downstream TLS: certificates by SNI, live certificate reloads, checks, the HTTPS redirect.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod check;
mod redirect;
mod reload;
mod sni;
mod tickets;
