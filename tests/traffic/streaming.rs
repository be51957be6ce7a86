//! A response body with a `Content-Length` reaches the client as it arrives from the upstream:
//! 10 bytes of 1000 then a stall must give the client those 10 bytes (not hold them until the
//! body is complete or the read times out).

use std::time::Duration;

use dyegate_suite::raw::RawClient;
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::Dyegate;

#[tokio::test]
async fn the_first_bytes_of_a_stalled_content_length_body_reach_the_client() {
    let stall = FaultyUpstream::start("stall", Fault::StallBody);
    let gw = Dyegate::start(&format!(
        "upstreams:\n  slow: {{ targets: [\"{}\"] }}\nroutes:\n  - name: shop\n    timeouts: {{ read_ms: 20000 }}\n    split: [{{ upstream: slow, weight: 1 }}]\n",
        stall.target()
    ));
    let mut c = RawClient::connect(gw.addr()).await;
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    // Well before read_ms: whatever has come by now is what the gateway passed on.
    let got = c.read_to_close(Duration::from_secs(4)).await;
    assert!(
        !got.closed,
        "the stalled response ended early: {}",
        got.text()
    );
    let text = got.text();
    assert!(text.starts_with("HTTP/1.1 200"), "no head: {text:?}");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert_eq!(body, "0123456789", "body bytes passed on so far: {text:?}");
}
