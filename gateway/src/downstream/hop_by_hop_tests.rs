//! What [`strip`] leaves of a request, case by case: the same as Pingora 0.9.1's standard
//! `HttpUpstreamRequestPolicy` (`proxy_common.rs`, `sanitize_h1_upstream_request` and
//! `sanitize_h2_upstream_request`).

use super::*;

/// An upstream request going as `to` (HTTP/1.1 or HTTP/2) with `headers`, in order.
fn req(to: Version, headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("GET", b"/", None).expect("request");
    r.set_version(to);
    for (n, v) in headers {
        r.append_header(n.to_string(), *v).expect("header");
    }
    r
}

/// The request's header lines, `name: value`, names lowercase, sorted.
fn lines(r: &RequestHeader) -> Vec<String> {
    let mut all: Vec<String> = (r.headers.iter())
        .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
        .collect();
    all.sort();
    all
}

const EVERY_HOP_BY_HOP: &[(&str, &str)] = &[
    ("Host", "a"),
    ("Keep-Alive", "timeout=5"),
    ("Proxy-Connection", "keep-alive"),
    ("Proxy-Authenticate", "Basic"),
    ("Proxy-Authorization", "Basic eA=="),
    ("TE", "trailers"),
    ("Trailer", "x-checksum"),
    ("Transfer-Encoding", "chunked"),
    ("Connection", "keep-alive"),
    ("Upgrade", "h2c"),
    ("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA"),
    ("X-Kept", "1"),
];

#[test]
fn a_request_without_hop_by_hop_fields_is_left_as_it_is() {
    let given = [("Host", "a"), ("X-Env-Tag", "canary"), ("Accept", "*/*")];
    let mut r = req(Version::HTTP_11, &given);
    strip(&mut r, Version::HTTP_11).expect("stripped");
    assert_eq!(
        lines(&r),
        ["accept: */*", "host: a", "x-env-tag: canary"],
        "nothing removed"
    );
}

#[test]
fn every_hop_by_hop_field_is_removed_to_either_upstream() {
    for (to, from) in [
        (Version::HTTP_11, Version::HTTP_11),
        (Version::HTTP_11, Version::HTTP_10),
        (Version::HTTP_11, Version::HTTP_2),
        (Version::HTTP_2, Version::HTTP_11),
    ] {
        let mut r = req(to, EVERY_HOP_BY_HOP);
        strip(&mut r, from).expect("stripped");
        assert_eq!(lines(&r), ["host: a", "x-kept: 1"], "{from:?} to {to:?}");
    }
}

#[test]
fn http2_to_http2_keeps_te_trailers() {
    let mut r = req(Version::HTTP_2, &[("te", "trailers"), ("x-kept", "1")]);
    strip(&mut r, Version::HTTP_2).expect("nothing to do");
    assert_eq!(lines(&r), ["te: trailers", "x-kept: 1"]);
}

#[test]
fn fields_named_in_connection_are_removed_whatever_their_case() {
    let mut r = req(
        Version::HTTP_11,
        &[
            ("Host", "a"),
            ("Connection", "close, X-Private"),
            ("Connection", " , x-other ,"),
            ("x-private", "secret"),
            ("X-Other", "1"),
            ("X-Kept", "1"),
        ],
    );
    strip(&mut r, Version::HTTP_11).expect("stripped");
    assert_eq!(lines(&r), ["host: a", "x-kept: 1"]);
}

#[test]
fn connection_may_not_name_protected_pseudo_or_malformed_fields() {
    for connection in [
        "x-forwarded-for",
        "X-Forwarded-Host",
        "close, x-forwarded-proto",
        "Host",
        ":authority",
        "\"X-Forwarded-For\"",
        "x-a x-b",
        "a, b, c, d, e, f, g, h, i, j",
    ] {
        let mut r = req(
            Version::HTTP_11,
            &[("host", "a"), ("connection", connection)],
        );
        let e = strip(&mut r, Version::HTTP_11).expect_err(connection);
        assert_eq!(e.etype(), &InvalidHTTPHeader, "{connection}");
        assert_eq!(e.esource(), &ErrorSource::Downstream, "{connection}");
    }
    // Nine names are allowed, and a token that only looks like a protected name.
    for connection in ["a, b, c, d, e, f, g, h, i", "x-forwarded-for-me"] {
        let mut r = req(
            Version::HTTP_11,
            &[("host", "a"), ("connection", connection)],
        );
        strip(&mut r, Version::HTTP_11).expect(connection);
    }
}

#[test]
fn a_websocket_upgrade_goes_on_to_http1_only_from_http11() {
    let upgrade = [
        ("host", "a"),
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-key", "k"),
    ];
    let mut r = req(Version::HTTP_11, &upgrade);
    strip(&mut r, Version::HTTP_11).expect("upgrade");
    assert_eq!(
        lines(&r),
        [
            "connection: Upgrade",
            "host: a",
            "sec-websocket-key: k",
            "upgrade: websocket"
        ]
    );
    for (to, from) in [
        (Version::HTTP_11, Version::HTTP_10),
        (Version::HTTP_2, Version::HTTP_11),
    ] {
        let mut r = req(to, &upgrade);
        strip(&mut r, from).expect("no upgrade");
        assert_eq!(lines(&r), ["host: a", "sec-websocket-key: k"], "{from:?}");
    }
    // Any other upgrade is not forwarded.
    let mut r = req(
        Version::HTTP_11,
        &[("host", "a"), ("connection", "upgrade"), ("upgrade", "h2c")],
    );
    strip(&mut r, Version::HTTP_11).expect("h2c");
    assert_eq!(lines(&r), ["host: a"]);
}
