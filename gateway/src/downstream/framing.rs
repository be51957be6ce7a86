//! What Pingora accepts but should not pass on as it came: a request's framing and tag headers
//! are made unambiguous before the request goes upstream (RFC 9112 §3.2, §6.3; RFC 9110 §8.6).
//!
//! - HTTP/1.1 without `Host`: refused with 400 (Pingora 0.9 refuses two `Host` lines itself).
//! - `Content-Length: 39, 39` or two `Content-Length: 39` lines: Pingora checks that the
//!   values agree (differing ones get 400) but forwards them as they came; one value goes
//!   upstream, so a lenient upstream cannot read the framing another way.
//! - Two tag headers (`x-env-tag: canary`, `x-env-tag: beta`): the request is routed on the
//!   first, and only the first goes upstream.
//! - An HTTP/2 request body that ends with an empty `DATA` frame carrying `END_STREAM`: Pingora
//!   0.9.1 hands that frame to the body filter as an empty chunk marked as the end, and writes it
//!   upstream as an HTTP/1.1 chunk of size 0 (`0\r\n\r\n`, the last-chunk) before it writes
//!   the last-chunk again. The second one stays on the pooled upstream connection and is read as
//!   the start of the next request there (the upstream answers that request 400). The empty end
//!   chunk is dropped here ([`end_without_empty_chunk`]); docs/pingora-upstream.md.

use super::fields::{Fields, Name};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::Version;
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// Why a request is refused before routing; its text is the 400's body.
pub fn refusal(req: &RequestHeader) -> Option<&'static str> {
    if req.version == Version::HTTP_11 && !req.headers.contains_key(HOST) {
        return Some("missing Host header (required in HTTP/1.1)\n");
    }
    None
}

/// Written as Pingora writes it without a case map: titled.
static CONTENT_LENGTH_FIELD: Name = Name::cased(CONTENT_LENGTH, "Content-Length");

/// Leaves one `Content-Length` value on the upstream request when the client sent a list or
/// repeated lines (Pingora has already checked that they agree).
pub fn single_content_length(req: &mut dyn Fields) -> Result<()> {
    if req.headers().contains_key(TRANSFER_ENCODING) {
        return Ok(());
    }
    let mut values = req.headers().get_all(CONTENT_LENGTH).iter();
    let (Some(first), second) = (values.next(), values.next()) else {
        return Ok(());
    };
    if second.is_none() && !first.as_bytes().contains(&b',') {
        return Ok(());
    }
    let length = first
        .to_str()
        .ok()
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| Error::explain(InvalidHTTPHeader, "unreadable Content-Length"))?;
    req.set(&CONTENT_LENGTH_FIELD, HeaderValue::from(length))
}

/// Leaves only the first `header` line (the one the request was routed on).
pub fn first_tag_only(req: &mut dyn Fields, header: &HeaderName, case: &Bytes) -> Result<()> {
    let mut values = req.headers().get_all(header).iter();
    let (Some(first), Some(_)) = (values.next(), values.next()) else {
        return Ok(());
    };
    let first = first.clone();
    req.set_named(header, case, first)
}

/// The request body filter's step for the empty last chunk (see the module's text): an empty
/// chunk that ends the body becomes no chunk, so Pingora writes the last-chunk once. A chunk
/// with bytes, or an empty one before the end (Pingora skips those itself), is left as it is.
pub fn end_without_empty_chunk(body: &mut Option<bytes::Bytes>, end_of_stream: bool) {
    if end_of_stream && body.as_ref().is_some_and(|b| b.is_empty()) {
        *body = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/", None).expect("request");
        r.set_version(version);
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).expect("header");
        }
        r
    }

    fn values(r: &RequestHeader, name: &str) -> Vec<String> {
        r.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn host_is_required_in_http11_only() {
        assert!(refusal(&req(Version::HTTP_11, &[])).is_some());
        assert!(refusal(&req(Version::HTTP_11, &[("host", "a")])).is_none());
        assert!(refusal(&req(Version::HTTP_10, &[])).is_none());
        assert!(refusal(&req(Version::HTTP_2, &[])).is_none());
    }

    #[test]
    fn content_length_lists_and_repeats_become_one_value() {
        for given in [
            &[("content-length", "39, 39")][..],
            &[("content-length", "39"), ("content-length", "39")][..],
            &[("content-length", "39,39"), ("content-length", "39")][..],
        ] {
            let mut r = req(Version::HTTP_11, given);
            single_content_length(&mut r).expect("agreeing values");
            assert_eq!(values(&r, "content-length"), vec!["39"], "{given:?}");
        }
        let mut r = req(Version::HTTP_11, &[("content-length", "7")]);
        single_content_length(&mut r).expect("one value");
        assert_eq!(values(&r, "content-length"), vec!["7"]);
        // With Transfer-Encoding, Pingora has already removed Content-Length; left alone.
        let mut r = req(
            Version::HTTP_11,
            &[("transfer-encoding", "chunked"), ("content-length", "1, 1")],
        );
        single_content_length(&mut r).expect("te");
        assert_eq!(values(&r, "content-length"), vec!["1, 1"]);
    }

    #[test]
    fn only_the_first_tag_stays() {
        let header = HeaderName::from_static("x-env-tag");
        let case = Bytes::from_static(b"x-env-tag");
        let mut r = req(
            Version::HTTP_11,
            &[("x-env-tag", "canary"), ("x-env-tag", "beta")],
        );
        first_tag_only(&mut r, &header, &case).expect("tags");
        assert_eq!(values(&r, "x-env-tag"), vec!["canary"]);
        let mut r = req(Version::HTTP_11, &[("x-env-tag", "beta")]);
        first_tag_only(&mut r, &header, &case).expect("tag");
        assert_eq!(values(&r, "x-env-tag"), vec!["beta"]);
    }

    #[test]
    fn an_empty_chunk_that_ends_the_body_is_dropped_and_nothing_else() {
        let mut empty_end = Some(bytes::Bytes::new());
        end_without_empty_chunk(&mut empty_end, true);
        assert_eq!(empty_end, None);

        let mut empty_mid = Some(bytes::Bytes::new());
        end_without_empty_chunk(&mut empty_mid, false);
        assert_eq!(empty_mid, Some(bytes::Bytes::new()));

        let mut last = Some(bytes::Bytes::from_static(b"tail"));
        end_without_empty_chunk(&mut last, true);
        assert_eq!(last.as_deref(), Some(&b"tail"[..]));

        let mut none = None;
        end_without_empty_chunk(&mut none, true);
        assert_eq!(none, None);
    }
}
