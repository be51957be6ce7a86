use super::*;
use crate::downstream::room::tests::{request, wire};
use http::header::*;

static ADDED: Name = Name::new("x-added");
static REPLACED: Name = Name::new("x-env-tag");
static LENGTH: Name = Name::cased(CONTENT_LENGTH, "Content-Length");

/// The edits the gateway makes, in kind: a new field, one replaced, one titled, one removed.
fn edits(up: &mut dyn Fields) -> Result<()> {
    up.set(&ADDED, HeaderValue::from_static("1"))?;
    up.set(&REPLACED, HeaderValue::from_static("canary"))?;
    up.set(&LENGTH, HeaderValue::from(7u64))?;
    up.remove(&HeaderName::from_static("x-gone"));
    let dye = HeaderName::from_static("x-dye");
    up.set_named(
        &dye,
        &Bytes::from_static(b"x-dye"),
        HeaderValue::from_static("d"),
    )
}

#[test]
fn a_plain_request_is_edited_without_its_case_map_and_goes_out_byte_for_byte_the_same() {
    let fields = [
        ("Host", "example.com"),
        ("x-env-tag", "beta"),
        ("x-gone", "1"),
        ("x-multi", "a"),
        ("Content-Length", "3"),
        ("x-multi", "b"),
    ];
    let mut req = request(b"/a/b?q=1", &fields);
    req.extensions_mut().insert(7u32);
    assert!(is_plain(&req));
    // What the request with its case map becomes, edited field by field as before.
    let mut cased = req.clone();
    edits(&mut cased).expect("edits");

    edit(&mut req, room::MOST_ADDED, edits).expect("edits");
    assert!(!req.has_case(), "the case map was dropped");
    assert_eq!(
        String::from_utf8(wire(&req)).expect("ascii"),
        String::from_utf8(wire(&cased)).expect("ascii")
    );
    assert_eq!(req.raw_path(), b"/a/b?q=1");
    assert_eq!(req.uri.query(), Some("q=1"));
    assert_eq!(req.method, "GET");
    assert_eq!(req.version, Version::HTTP_11);
    assert_eq!(req.extensions.get::<u32>(), Some(&7));
    assert!(req.headers.capacity() >= req.headers.len());
}

#[test]
fn a_name_the_client_titled_keeps_the_case_map_and_its_case() {
    for name in ["User-Agent", "x-Mixed", "host", "HOST", "date"] {
        let mut req = request(b"/", &[("Host", "a"), (name, "v")]);
        assert!(!is_plain(&req), "{name}");
        let mut cased = req.clone();
        edits(&mut cased).expect("edits");
        edit(&mut req, room::MOST_ADDED, edits).expect("edits");
        assert!(req.has_case(), "{name}");
        assert_eq!(wire(&req), wire(&cased), "{name}");
        let text = String::from_utf8(wire(&req)).expect("ascii");
        assert!(text.contains(&format!("{name}: v\r\n")), "{text}");
    }
}

#[test]
fn targets_only_the_request_keeps_leave_the_request_as_it_is() {
    let mut absolute = request(b"http://example.com/x?y", &[("Host", "example.com")]);
    assert!(!is_plain(&absolute));
    edit(&mut absolute, room::MOST_ADDED, edits).expect("edits");
    assert!(absolute.has_case());
    assert_eq!(absolute.raw_path(), b"http://example.com/x?y");

    let mut lossy = request(b"/caf\xe9", &[("Host", "a")]);
    assert!(!is_plain(&lossy));
    edit(&mut lossy, room::MOST_ADDED, edits).expect("edits");
    assert_eq!(lossy.raw_path(), b"/caf\xe9");
    assert!(!lossy.raw_path_is_utf8());
}

#[test]
fn an_http2_request_is_plain_and_keeps_its_end_of_stream_choice() {
    for end in [false, true] {
        let mut h2 = RequestHeader::build_no_case("POST", b"/grpc.Svc/Call", None).expect("h2");
        h2.set_version(Version::HTTP_2);
        h2.set_send_end_stream(end);
        h2.append_header("content-type", "application/grpc")
            .expect("field");
        assert!(is_plain(&h2));
        edit(&mut h2, room::MOST_ADDED, edits).expect("edits");
        assert_eq!(h2.version, Version::HTTP_2);
        assert_eq!(h2.send_end_stream(), Some(end));
        assert_eq!(h2.method, "POST");
        assert_eq!(h2.raw_path(), b"/grpc.Svc/Call");
        let added = h2.headers.get("x-added").map(|v| v.as_bytes());
        assert_eq!(added, Some(&b"1"[..]));
        let kind = h2.headers.get("content-type").map(|v| v.as_bytes());
        assert_eq!(kind, Some(&b"application/grpc"[..]));
    }
}

#[test]
fn a_failed_edit_leaves_the_request_whole() {
    let mut req = request(b"/p?q", &[("Host", "a"), ("x-env-tag", "beta")]);
    let before = wire(&req);
    let out: Result<()> = edit(&mut req, room::MOST_ADDED, |up| {
        up.remove(&HeaderName::from_static("x-nothing"));
        Err(Error::explain(InvalidHTTPHeader, "refused"))
    });
    assert!(out.is_err());
    assert_eq!(wire(&req), before);
    assert_eq!(req.raw_path(), b"/p?q");
    assert_eq!(req.method, "GET");
}

#[test]
fn a_value_that_cannot_be_a_field_is_refused() {
    assert!(header_value("a\r\nb").is_err());
    assert!(header_value(String::from("ok")).is_ok());
}

/// Every name `http` knows.
const KNOWN: [HeaderName; 81] = [
    ACCEPT,
    ACCEPT_CHARSET,
    ACCEPT_ENCODING,
    ACCEPT_LANGUAGE,
    ACCEPT_RANGES,
    ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD,
    AGE,
    ALLOW,
    ALT_SVC,
    AUTHORIZATION,
    CACHE_CONTROL,
    CACHE_STATUS,
    CDN_CACHE_CONTROL,
    CONNECTION,
    CONTENT_DISPOSITION,
    CONTENT_ENCODING,
    CONTENT_LANGUAGE,
    CONTENT_LENGTH,
    CONTENT_LOCATION,
    CONTENT_RANGE,
    CONTENT_SECURITY_POLICY,
    CONTENT_SECURITY_POLICY_REPORT_ONLY,
    CONTENT_TYPE,
    COOKIE,
    DNT,
    DATE,
    ETAG,
    EXPECT,
    EXPIRES,
    FORWARDED,
    FROM,
    HOST,
    IF_MATCH,
    IF_MODIFIED_SINCE,
    IF_NONE_MATCH,
    IF_RANGE,
    IF_UNMODIFIED_SINCE,
    LAST_MODIFIED,
    LINK,
    LOCATION,
    MAX_FORWARDS,
    ORIGIN,
    PRAGMA,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    PUBLIC_KEY_PINS,
    PUBLIC_KEY_PINS_REPORT_ONLY,
    RANGE,
    REFERER,
    REFERRER_POLICY,
    REFRESH,
    RETRY_AFTER,
    SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION,
    SERVER,
    SET_COOKIE,
    STRICT_TRANSPORT_SECURITY,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    UPGRADE_INSECURE_REQUESTS,
    USER_AGENT,
    VARY,
    VIA,
    WARNING,
    WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
    X_DNS_PREFETCH_CONTROL,
    X_FRAME_OPTIONS,
    X_XSS_PROTECTION,
];

/// `TITLED` is the list Pingora's writer titles: for every name `http` knows, the form Pingora
/// writes without a case map is plain, and no other spelling of it is.
#[test]
fn the_titled_names_are_the_ones_pingora_titles() {
    let mut titled = 0;
    for name in KNOWN.iter().chain([&HeaderName::from_static("x-env-tag")]) {
        let mut req = RequestHeader::build_no_case("GET", b"/", None).expect("request");
        req.insert_header(name.clone(), "v").expect("field");
        let text = String::from_utf8(wire(&req)).expect("ascii");
        let written = text.strip_suffix(": v\r\n").expect("one field");
        assert!(plain(written.as_bytes()), "{written}");
        let lower = name.as_str();
        if written != lower {
            titled += 1;
            assert!(!plain(lower.as_bytes()), "{lower}");
        }
        let upper = lower.to_ascii_uppercase();
        assert!(!plain(upper.as_bytes()), "{upper}");
    }
    assert_eq!(titled, TITLED.len());
}
