//! What Pingora accepts but should not pass on as it came: a request's framing and tag headers
//! are made unambiguous before the request goes upstream (RFC 9112 §3.2, §6.3; RFC 9110 §8.6).
//!
//! - HTTP/1.1 without `Host`: refused with 400 (Pingora 0.9 refuses two `Host` lines itself).
//! - `Content-Length: 39, 39` or two `Content-Length: 39` lines: Pingora checks that the
//!   values agree (differing ones get 400) but forwards them as they came; one value goes
//!   upstream, so a lenient upstream cannot read the framing another way.
//! - Two tag headers (`x-env-tag: canary`, `x-env-tag: beta`): the request is routed on the
//!   first, and only the first goes upstream.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderName, Version};
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// Why a request is refused before routing; its text is the 400's body.
pub fn refusal(req: &RequestHeader) -> Option<&'static str> {
    if req.version == Version::HTTP_11 && !req.headers.contains_key(HOST) {
        return Some("missing Host header (required in HTTP/1.1)\n");
    }
    None
}

/// Leaves one `Content-Length` value on the upstream request when the client sent a list or
/// repeated lines (Pingora has already checked that they agree).
pub fn single_content_length(req: &mut RequestHeader) -> Result<()> {
    if req.headers.contains_key(TRANSFER_ENCODING) {
        return Ok(());
    }
    let mut values = req.headers.get_all(CONTENT_LENGTH).iter();
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
    req.insert_header(CONTENT_LENGTH, length)?;
    Ok(())
}

/// Leaves only the first `header` line (the one the request was routed on).
pub fn first_tag_only(req: &mut RequestHeader, header: &HeaderName) -> Result<()> {
    let mut values = req.headers.get_all(header).iter();
    let (Some(first), Some(_)) = (values.next(), values.next()) else {
        return Ok(());
    };
    let first = first.clone();
    req.insert_header(header.clone(), first)?;
    Ok(())
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
        let mut r = req(
            Version::HTTP_11,
            &[("x-env-tag", "canary"), ("x-env-tag", "beta")],
        );
        first_tag_only(&mut r, &header).expect("tags");
        assert_eq!(values(&r, "x-env-tag"), vec!["canary"]);
        let mut r = req(Version::HTTP_11, &[("x-env-tag", "beta")]);
        first_tag_only(&mut r, &header).expect("tag");
        assert_eq!(values(&r, "x-env-tag"), vec!["beta"]);
    }
}
