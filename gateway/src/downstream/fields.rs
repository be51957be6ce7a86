//! The upstream request's fields as dyegate edits them, in the cheaper of two forms.
//!
//! Pingora keeps an HTTP/1 request's fields twice: the values by name, and each name's case as
//! it came, so that it writes the names upstream as the client wrote them. Every field added
//! through `RequestHeader::insert_header` therefore parses its name and copies it (an
//! allocation, and another to share it between the two maps), and grows both maps
//! (docs/pingora-upstream.md §16, §24). Without the case map Pingora writes a name as its
//! lowercase form, or titled for the twelve names it knows (`Host`, `Content-Length`, ...).
//!
//! [`edit`] looks at the names once: when every one of them is already written that way (a
//! load generator's `Host`, lowercase names, any HTTP/2 request: it has no case map), dropping the case map
//! changes no byte on the wire, so the edits go straight into the value map with names parsed
//! once for the process ([`Name`]): no parse, no copy, no second map. Otherwise (`User-Agent`,
//! `Accept`: any name a client titled itself) the request keeps its case map and its room is
//! made once (`room.rs`). Either way the writers see one [`Fields`].

use super::room;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::Version;
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// A field name dyegate writes: parsed once, with the case it is written in (its lowercase
/// form, the form both of Pingora's writers use for it).
pub struct Name {
    parsed: HeaderName,
    case: Bytes,
}

impl Name {
    /// `text` must be a lowercase field name (`HeaderName::from_static` refuses anything else
    /// when the `static` is compiled), and not one of the names Pingora titles ([`Name::cased`]
    /// for those).
    pub const fn new(text: &'static str) -> Self {
        Name {
            parsed: HeaderName::from_static(text),
            case: Bytes::from_static(text.as_bytes()),
        }
    }

    /// One of the names Pingora writes titled without a case map, with that title.
    pub const fn cased(parsed: HeaderName, title: &'static str) -> Self {
        Name {
            parsed,
            case: Bytes::from_static(title.as_bytes()),
        }
    }

    pub fn parsed(&self) -> &HeaderName {
        &self.parsed
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Name").field(&self.parsed).finish()
    }
}

/// The request's fields while dyegate edits them.
pub trait Fields {
    /// The fields, by name.
    fn headers(&self) -> &HeaderMap;
    /// `name` with this one value: every line of it replaced, or added after the others.
    fn set(&mut self, name: &Name, value: HeaderValue) -> Result<()> {
        self.set_named(&name.parsed, &name.case, value)
    }
    /// The same for a name made at run time (the dye header, made with the table), written as
    /// `case` when the request keeps its case map.
    fn set_named(&mut self, name: &HeaderName, case: &Bytes, value: HeaderValue) -> Result<()>;
    /// Every line of `name` removed.
    fn remove(&mut self, name: &HeaderName);
}

impl Fields for RequestHeader {
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn set_named(&mut self, _: &HeaderName, case: &Bytes, value: HeaderValue) -> Result<()> {
        self.insert_header(case.clone(), value)
    }

    fn remove(&mut self, name: &HeaderName) {
        self.remove_header(name);
    }
}

impl Fields for HeaderMap {
    fn headers(&self) -> &HeaderMap {
        self
    }

    fn set_named(&mut self, name: &HeaderName, _: &Bytes, value: HeaderValue) -> Result<()> {
        self.try_insert(name.clone(), value)
            .map(|_| ())
            .or_err(InvalidHTTPHeader, "too many header fields")
    }

    fn remove(&mut self, name: &HeaderName) {
        HeaderMap::remove(self, name);
    }
}

/// A field value from bytes or text, refused as Pingora's `insert_header` refuses it.
pub fn header_value(value: impl TryInto<HeaderValue>) -> Result<HeaderValue> {
    value
        .try_into()
        .explain_err(InvalidHTTPHeader, |_| "invalid value while insert")
}

/// Runs `edits` on `req`'s fields with room for `more` added ones: on the value map alone when
/// dropping the case map changes nothing on the wire ([`is_plain`]), else on the request as it
/// is. `req` is whole again when this returns, whatever `edits` returned.
pub fn edit<T>(
    req: &mut RequestHeader,
    more: usize,
    edits: impl FnOnce(&mut dyn Fields) -> Result<T>,
) -> Result<T> {
    if !is_plain(req) {
        room::make_room(req, more);
        return edits(req);
    }
    // HTTP/2 only: whether an empty body's END_STREAM goes on the HEADERS frame.
    let end_stream = req.send_end_stream();
    let mut parts: Parts = std::mem::replace(req, placeholder()).into();
    // At most a few fields more than a request's own: no overflow of `http`'s bound can come
    // of it, and if it did the edits would still work, growing the map as they go.
    let _ = parts.headers.try_reserve(more);
    let out = edits(&mut parts.headers);
    *req = RequestHeader::from(parts);
    if let Some(end) = end_stream {
        req.set_send_end_stream(end);
    }
    out
}

/// Whether `req` is written the same way without its case map: an HTTP/1 or HTTP/2 request
/// whose target is its URI's path and query (not an absolute-form or CONNECT target, whose
/// bytes only the request keeps) and whose every name is written as Pingora writes it without
/// case (an HTTP/2 request has no case map: its names are lowercase).
pub fn is_plain(req: &RequestHeader) -> bool {
    if !matches!(
        req.version,
        Version::HTTP_10 | Version::HTTP_11 | Version::HTTP_2
    ) {
        return false;
    }
    room::target_is_uri(req)
        && req
            .case_header_iter()
            .all(|(case, _)| plain(case.as_slice()))
}

/// The names Pingora writes titled when a request has no case map (pingora-http
/// `case_header_name.rs`); every other name is written lowercase. A test checks this list
/// against Pingora's own writer for every name `http` knows.
const TITLED: [&str; 12] = [
    "Accept-Ranges",
    "Age",
    "Cache-Control",
    "Connection",
    "Content-Type",
    "Content-Encoding",
    "Content-Length",
    "Date",
    "Transfer-Encoding",
    "Host",
    "Server",
    "Set-Cookie",
];

/// Whether a name written as `case` is written the same way without a case map.
fn plain(case: &[u8]) -> bool {
    let titled = TITLED
        .iter()
        .find(|t| t.len() == case.len() && t.as_bytes().eq_ignore_ascii_case(case));
    match titled {
        Some(t) => t.as_bytes() == case,
        None => !case.iter().any(u8::is_ascii_uppercase),
    }
}

/// What `req` holds while its parts are edited: nothing is allocated for it.
fn placeholder() -> RequestHeader {
    RequestHeader::from(http::Request::new(()).into_parts().0)
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
