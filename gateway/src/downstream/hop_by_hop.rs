//! The hop-by-hop fields of a request, taken off before it goes upstream, in one pass over its
//! header names (RFC 9110 §7.6.1).
//!
//! dyegate's peers carry `HttpUpstreamRequestPolicy::preserve()` (`routing/transport.rs`), so
//! Pingora's own sanitising (`pingora-proxy` 0.9.1, `proxy_common.rs`: about 13 `remove_header`
//! calls per request, each parsing and hashing a name, whatever the request holds) is off, and
//! this does the same work from `upstream_request_filter`, before dyegate writes its own headers:
//!
//! - the fields named in `Connection` are removed; a request naming `Host`, a forwarding header
//!   (`X-Forwarded-For`, `-Host`, `-Proto`), a pseudo-header (`:authority`), something that is
//!   not a token (`"X-Forwarded-For"`), or ten names or more is refused (400), as Pingora does;
//! - `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Connection`, `Upgrade` and `HTTP2-Settings` are removed;
//! - to an HTTP/1 upstream, an HTTP/1.1 WebSocket upgrade (`Upgrade: websocket`) goes on as
//!   `Connection: Upgrade` and `Upgrade: websocket`; any other upgrade is not forwarded.
//!
//! A request without any of these fields (most) costs one look at each header name. The list
//! of both, side by side: docs/pingora-upstream.md §23.

use http::header::{self, HeaderName, HeaderValue};
use http::Version;
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// Pingora's bound on the names one request's `Connection` fields may give.
const MAX_NOMINATIONS: usize = 10;

/// Names that `Connection` may not remove: the request would reach the upstream without the
/// host or forwarding fields it relies on.
const PROTECTED: [&str; 4] = [
    "host",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// The hop-by-hop fields, by name (RFC 9110 §7.6.1, and the three older ones Pingora strips).
static HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TRAILER,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("http2-settings"),
];

/// Takes the hop-by-hop fields off `req`, the upstream request of a request that came as
/// `downstream` (its HTTP version). `req.version` says where it goes: HTTP/2 (where nothing is
/// done for a request that came over HTTP/2 too, as in Pingora) or HTTP/1.
pub fn strip(req: &mut RequestHeader, downstream: Version) -> Result<()> {
    let to_h2 = req.version == Version::HTTP_2;
    if to_h2 && downstream == Version::HTTP_2 {
        return Ok(());
    }
    // The one pass: which of the fields the request has (most have none).
    let mut present = 0u16;
    for name in req.headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return Ok(());
    }
    // The `Connection` lines that name fields (at most nine, once checked), kept apart from
    // the request so that it can be changed while they are read.
    check_nominations(&req.headers)?;
    let mut lines: [Option<HeaderValue>; MAX_NOMINATIONS] = Default::default();
    let named = req.headers.get_all(header::CONNECTION).iter();
    for (slot, line) in lines
        .iter_mut()
        .zip(named.filter(|v| tokens(v).next().is_some()))
    {
        *slot = Some(line.clone());
    }
    let websocket = !to_h2
        && downstream == Version::HTTP_11
        && (req.headers.get(header::UPGRADE))
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    for token in lines.iter().flatten().flat_map(tokens) {
        // A token is ASCII (checked): a `str`, looked up without allocating.
        if let Ok(name) = std::str::from_utf8(token) {
            req.remove_header(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            req.remove_header(name);
        }
    }
    if websocket {
        req.insert_header(header::CONNECTION, "Upgrade")?;
        req.insert_header(header::UPGRADE, "websocket")?;
    }
    Ok(())
}

/// The non-empty, trimmed tokens of one `Connection` field value.
fn tokens(value: &HeaderValue) -> impl Iterator<Item = &[u8]> {
    (value.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Refuses what Pingora's standard policy refuses in `Connection` (`ConnectionNominations`):
/// ten names or more, a pseudo-header, a name that is not a token, a protected name.
fn check_nominations(headers: &http::HeaderMap) -> Result<()> {
    let lines = headers.get_all(header::CONNECTION).into_iter();
    for (n, token) in lines.flat_map(tokens).enumerate() {
        if n + 1 >= MAX_NOMINATIONS {
            return refuse("too many Connection header nominations");
        }
        if token.starts_with(b":") {
            return refuse("protected header cannot be nominated by the Connection header");
        }
        // A header name is at most 64 KiB long (`http`'s limit, which Pingora's parse meets).
        if !token.iter().all(|&b| is_tchar(b)) || token.len() >= 1 << 16 {
            return refuse("invalid token nominated by the Connection header");
        }
        if PROTECTED
            .iter()
            .any(|p| token.eq_ignore_ascii_case(p.as_bytes()))
        {
            return refuse("protected header cannot be nominated by the Connection header");
        }
    }
    Ok(())
}

/// A request refused for its `Connection` field: a downstream error, answered 400.
fn refuse(why: &'static str) -> Result<()> {
    Err(Error::explain(InvalidHTTPHeader, why).into_down())
}

/// A `tchar` (RFC 9110 §5.6.2): the bytes of a token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
#[path = "hop_by_hop_tests.rs"]
mod tests;
