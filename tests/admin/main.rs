//! The admin API: endpoints, identities and tokens, answers during a reload, rollback bodies,
//! the admin listener's own connection bounds, the live view in a real browser.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod api;
mod during_reload;
mod identities;
mod limits;
mod live_view;
mod rollback_body;
