//! W3C trace context and baggage at the gateway, without I/O: reading `traceparent` (Trace
//! Context Level 1, strict, with the forward-compatibility rule for higher versions), checking
//! `tracestate` (forwarded as it is when valid, dropped otherwise), rewriting `baggage` so that it
//! carries the dye tag, and formatting the headers the gateway sends.
//!
//! The gateway decides ids and sampling (`dyegate::telemetry`); this module only reads and writes
//! header values, so every rule of the specs is unit- and property-tested here.

mod baggage;
mod traceparent;
mod tracestate;

pub use baggage::{
    encode_baggage_value, is_baggage_key, set_baggage_member, BaggageEdit, BAGGAGE,
    BAGGAGE_MAX_BYTES, BAGGAGE_MAX_MEMBERS,
};
pub use traceparent::{
    format_traceparent, TraceParent, TraceParentError, FLAG_SAMPLED, TRACEPARENT, TRACEPARENT_LEN,
    TRACERESPONSE,
};
pub use tracestate::{check_tracestate, TraceStateError, TRACESTATE, TRACESTATE_MAX_MEMBERS};

/// Optional whitespace (RFC 7230 `OWS`): spaces and horizontal tabs.
fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}
