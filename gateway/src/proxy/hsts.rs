//! `Strict-Transport-Security` (gateway.yaml `tls.hsts`) on every answer over HTTPS: proxied
//! ones, dyegate's own and its error answers. Never over plain HTTP (RFC 6797, 7.2: a browser
//! ignores it there, and it would say nothing true).

use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// The header for an answer on `session` (`None` over plain HTTP or without `tls.hsts`).
pub(super) fn for_session(
    session: &Session,
    hsts: Option<&http::HeaderValue>,
) -> Option<http::HeaderValue> {
    hsts.filter(|_| super::hooks::on_tls(session)).cloned()
}

/// Adds the header to `resp` when the answer goes over HTTPS.
pub(super) fn add(
    session: &Session,
    hsts: Option<&http::HeaderValue>,
    resp: &mut ResponseHeader,
) -> Result<()> {
    if let Some(value) = for_session(session, hsts) {
        resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, value)?;
    }
    Ok(())
}
