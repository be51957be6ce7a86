//! Request-time policies of dyegate, one small module each. Everything here is pure: no I/O, no
//! clocks, no global state, so the gateway's routing decision can be unit- and property-tested
//! without sockets.

pub mod dye_tag;
pub mod forwarded;
pub mod smooth;
pub mod sticky;
pub mod trace_context;

pub use dye_tag::{DyeTag, TagSource, TrustedSources};
pub use forwarded::{ClientAddr, Forwarding};
pub use smooth::SmoothWrr;
pub use sticky::{sticky_bucket, StickyRanges, STICKY_BUCKETS};
