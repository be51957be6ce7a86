//! Routing end to end: dye tags, matching, splits, and the access log of each decision.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod access_log;
mod conditions;
mod dye;
mod explain;
mod matching;
mod split;
