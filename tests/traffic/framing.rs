//! Request framing and tag headers as the upstream receives them (raw sockets on both sides):
//! a repeated or comma-listed `Content-Length` goes upstream as one value, exactly one tag
//! header goes upstream (the first, the one routed on), and HTTP/1.1 without `Host` is a 400.

use std::time::Duration;

use dyegate_suite::raw::{RawClient, RawUpstream};
use dyegate_suite::{Dyegate, GatewayConfig};

struct Setup {
    stable: RawUpstream,
    canary: RawUpstream,
    gw: Dyegate,
}

fn setup() -> Setup {
    let stable = RawUpstream::start("stable");
    let canary = RawUpstream::start("canary");
    let gw = GatewayConfig::new(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: all\n    dye: {{ tags: {{ canary: canary, beta: canary }} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        stable.target(),
        canary.target()
    ))
    .start();
    Setup { stable, canary, gw }
}

async fn exchange(gw: &Dyegate, request: &str) -> dyegate_suite::raw::Received {
    let mut c = RawClient::connect(gw.addr()).await;
    c.send(request.as_bytes()).await;
    c.read_response(Duration::from_secs(10)).await
}

const BODY: &str = "012345678901234567890123456789012345678"; // 39 bytes

#[tokio::test]
async fn a_comma_listed_content_length_goes_upstream_as_one_value() {
    let s = setup();
    let got = exchange(
        &s.gw,
        &format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 39, 39\r\n\r\n{BODY}"),
    )
    .await;
    assert_eq!(got.status(), Some(200), "{}", got.text());
    assert_eq!(
        s.stable.header_lines("content-length"),
        vec!["content-length: 39"]
    );
    assert!(
        s.stable.received().ends_with(BODY),
        "{}",
        s.stable.received()
    );
}

#[tokio::test]
async fn repeated_identical_content_length_lines_go_upstream_as_one() {
    let s = setup();
    let got = exchange(
        &s.gw,
        &format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 39\r\nContent-Length: 39\r\n\r\n{BODY}"
        ),
    )
    .await;
    assert_eq!(got.status(), Some(200), "{}", got.text());
    assert_eq!(
        s.stable.header_lines("content-length"),
        vec!["content-length: 39"]
    );
    assert_eq!(s.stable.requests(), 1);
}

#[tokio::test]
async fn differing_content_lengths_are_refused() {
    let s = setup();
    let got = exchange(
        &s.gw,
        &format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 39\r\nContent-Length: 40\r\n\r\n{BODY}"
        ),
    )
    .await;
    assert_eq!(got.status(), Some(400), "{}", got.text());
    assert_eq!(s.stable.requests(), 0, "{}", s.stable.received());
}

#[tokio::test]
async fn only_the_first_tag_header_goes_upstream_the_one_routed_on() {
    let s = setup();
    let got = exchange(
        &s.gw,
        "GET / HTTP/1.1\r\nHost: a\r\nx-env-tag: canary\r\nx-env-tag: beta\r\n\r\n",
    )
    .await;
    assert_eq!(got.status(), Some(200), "{}", got.text());
    assert!(got.text().contains("x-upstream: canary"), "{}", got.text());
    assert_eq!(
        s.canary.header_lines("x-env-tag"),
        vec!["x-env-tag: canary"]
    );
    // An unconfigured first tag: routed as untagged (on_unknown_tag: base) and forwarded alone.
    let got = exchange(
        &s.gw,
        "GET / HTTP/1.1\r\nHost: a\r\nx-env-tag: other\r\nx-env-tag: canary\r\n\r\n",
    )
    .await;
    assert!(got.text().contains("x-upstream: stable"), "{}", got.text());
    assert_eq!(s.stable.header_lines("x-env-tag"), vec!["x-env-tag: other"]);
}

#[tokio::test]
async fn http11_without_host_is_400_and_http10_without_host_is_served() {
    let s = setup();
    let got = exchange(&s.gw, "GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(got.status(), Some(400), "{}", got.text());
    assert_eq!(s.stable.requests(), 0);
    let mut c = RawClient::connect(s.gw.addr()).await;
    c.send(b"GET / HTTP/1.0\r\n\r\n").await;
    let got = c.read_to_close(Duration::from_secs(10)).await;
    assert_eq!(got.status(), Some(200), "{}", got.text());
    assert_eq!(s.stable.requests(), 1);
}

/// The head of the request whose request line starts with `line`, as the upstream received it.
fn head_of(received: &str, line: &str) -> Vec<String> {
    let start = received
        .find(line)
        .unwrap_or_else(|| panic!("no {line} in {received}"));
    let head = &received[start..];
    let end = head.find("\r\n\r\n").unwrap_or(head.len());
    head[..end].split("\r\n").map(str::to_string).collect()
}

/// Field names go upstream as the client wrote them, whichever way the gateway edits the
/// request: a request whose names are all lowercase (and `Host`) is edited without Pingora's
/// case map, one with a name the client titled (`User-Agent`) keeps it. The fields the gateway
/// adds are lowercase in both, and the tag header too when it rewrites it.
#[tokio::test]
async fn field_names_go_upstream_in_the_case_the_client_wrote_them() {
    let s = setup();
    let requests = [
        (
            "GET /lower HTTP/1.1",
            "Host: a\r\nx-lower: 1\r\naccept: */*\r\nx-env-tag: canary\r\nx-env-tag: beta\r\n",
            &["Host: a", "x-lower: 1", "accept: */*", "x-env-tag: canary"][..],
        ),
        (
            "GET /titled HTTP/1.1",
            "Host: a\r\nUser-Agent: t/1\r\nX-Mixed-Case: 2\r\nx-lower: 3\r\nX-Env-Tag: canary\r\nX-Env-Tag: beta\r\n",
            &["Host: a", "User-Agent: t/1", "X-Mixed-Case: 2", "x-lower: 3", "x-env-tag: canary"][..],
        ),
    ];
    for (line, fields, _) in &requests {
        let got = exchange(&s.gw, &format!("{line}\r\n{fields}\r\n")).await;
        assert_eq!(got.status(), Some(200), "{}", got.text());
    }
    let received = s.canary.received();
    for (line, _, expected) in &requests {
        let head = head_of(&received, line);
        for want in *expected {
            assert!(head.iter().any(|l| l == want), "{want:?} not in {head:?}");
        }
        for added in [
            "x-forwarded-for: ",
            "x-forwarded-proto: http",
            "traceparent: 00-",
        ] {
            assert!(
                head.iter().any(|l| l.starts_with(added)),
                "{added:?} not in {head:?}"
            );
        }
        let tags = head
            .iter()
            .filter(|l| l.to_ascii_lowercase().starts_with("x-env-tag:"));
        assert_eq!(tags.count(), 1, "{head:?}");
    }
}
