//! A copy's own place in the trace: its `traceparent` keeps the real request's trace id and
//! sampled flag, with a new span id, so a trace shows the copy as a child of the gateway's span
//! beside the real upstream call rather than as the same call made twice.

use dyegate_plugins::trace_context::{format_traceparent, TraceParent, TRACEPARENT};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use pingora::http::RequestHeader;

/// Replaces the copy's `traceparent` (as it went to the real upstream) by a child's: same trace,
/// a span id of its own. A copy without a valid one keeps what it has (nothing to be a child of).
pub fn child_traceparent(head: &mut RequestHeader) {
    let Ok(parent) = TraceParent::from_headers(
        head.headers
            .get_all(TRACEPARENT)
            .iter()
            .map(|v| v.as_bytes()),
    ) else {
        return;
    };
    let span = RandomIdGenerator::default().new_span_id().to_bytes();
    let value = format_traceparent(&parent.trace_id, &span, parent.sampled());
    if let Ok(v) = http::HeaderValue::from_bytes(&value) {
        let _ = head.insert_header(TRACEPARENT, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_a_child_in_the_same_trace() {
        let mut head = RequestHeader::build("GET", b"/", None).expect("head");
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        head.insert_header(TRACEPARENT, parent).expect("header");
        child_traceparent(&mut head);
        let child = head.headers.get(TRACEPARENT).expect("traceparent");
        let child = child.to_str().expect("text");
        assert_eq!(&child[..36], &parent[..36], "same version and trace id");
        assert_ne!(&child[36..52], &parent[36..52], "its own span id");
        assert_ne!(&child[36..52], "0000000000000000");
        assert_eq!(&child[52..], "-01", "sampled as the real request");
        assert_eq!(head.headers.get_all(TRACEPARENT).iter().count(), 1);
    }

    #[test]
    fn without_a_valid_traceparent_nothing_changes() {
        let mut head = RequestHeader::build("GET", b"/", None).expect("head");
        child_traceparent(&mut head);
        assert!(head.headers.get(TRACEPARENT).is_none());
        head.insert_header(TRACEPARENT, "garbage").expect("header");
        child_traceparent(&mut head);
        assert_eq!(
            head.headers.get(TRACEPARENT).map(|v| v.as_bytes()),
            Some(&b"garbage"[..])
        );
    }
}
