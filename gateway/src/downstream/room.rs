//! Room in the upstream request's header maps for the fields dyegate adds, made once.
//!
//! Pingora hands `upstream_request_filter` a clone of the parsed request, whose two header maps
//! (values, and each name's case) were sized for exactly the fields that came; `RequestHeader`
//! offers no `reserve` (docs/pingora-upstream.md §16). Each field dyegate then adds
//! (`traceparent`, `baggage`, the dye tag, `X-Forwarded-For`/`-Proto`/`-Host`, ...) that does
//! not fit doubles both maps: a request of one to three fields (`curl`, most API clients, a
//! load generator) pays two to four growths of each map, each a new index table, a rehash of
//! every field and an entries `realloc`. [`make_room`] rebuilds the request once at the size it
//! will end at instead, when (and only when) the fields to add would not fit; a request that
//! came with room to spare (a browser's dozen fields) is left as it is.

use http::Version;
use pingora::http::{HeaderNameVariant, RequestHeader};
use pingora::prelude::*;

/// The most fields dyegate adds to one upstream request: `traceparent`, `baggage`, the dye tag,
/// and the forwarding headers (`X-Forwarded-For`, `-Proto`, `-Host`, `Forwarded`, `X-Real-IP`).
pub const MOST_ADDED: usize = 8;

/// Whether `req` holds `more` fields beyond its current ones without growing its maps.
pub fn has_room(req: &RequestHeader, more: usize) -> bool {
    req.headers.capacity() >= req.headers.len() + more
}

/// Rebuilds `req` with room for `more` fields when it has none: the same method, target (the
/// raw bytes of an absolute-form, CONNECT or non-UTF-8 target included), version, extensions,
/// fields in the same order with the same case. Left as it is when it has room, or when it
/// cannot be rebuilt (then the fields grow the maps as before).
pub fn make_room(req: &mut RequestHeader, more: usize) {
    if has_room(req, more) {
        return;
    }
    if let Ok(fresh) = rebuilt(req, req.headers.len() + more) {
        *req = fresh;
    }
}

/// Whether `req`'s target is its URI's path and query, byte for byte (not an absolute-form or
/// CONNECT target, or one that is not UTF-8, whose bytes only the request keeps).
pub fn target_is_uri(req: &RequestHeader) -> bool {
    req.raw_path_is_utf8()
        && (req.uri.path_and_query()).is_some_and(|pq| pq.as_str().as_bytes() == req.raw_path())
}

fn rebuilt(req: &RequestHeader, size: usize) -> Result<RequestHeader> {
    let mut fresh = match req.has_case() {
        true => RequestHeader::build(req.method.clone(), b"/", Some(size))?,
        false => RequestHeader::build_no_case(req.method.clone(), b"/", Some(size))?,
    };
    if target_is_uri(req) {
        // The URI is the target: shared, not parsed again.
        fresh.set_uri(req.uri.clone());
    } else {
        fresh.set_raw_path(req.raw_path())?;
    }
    fresh.set_version(req.version);
    if req.version == Version::HTTP_2 {
        if let Some(end) = req.send_end_stream() {
            fresh.set_send_end_stream(end);
        }
    }
    *fresh.extensions_mut() = req.extensions.clone();
    if req.has_case() {
        req.map(|name, value| match name {
            HeaderNameVariant::Case(case) => {
                fresh.append_header(case.clone(), value.clone()).map(|_| ())
            }
            // Only a request without a case map names its fields this way.
            HeaderNameVariant::Titled(_) => Ok(()),
        })?;
    } else {
        for (name, value) in req.headers.iter() {
            fresh.append_header(name.clone(), value.clone())?;
        }
    }
    Ok(fresh)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A parsed request as Pingora makes it: sized for its fields, with their case.
    pub(in crate::downstream) fn request(path: &[u8], fields: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", path, Some(fields.len())).expect("request");
        for (n, v) in fields {
            req.append_header(n.to_string(), *v).expect("field");
        }
        req
    }

    /// The fields as Pingora writes them upstream.
    pub(in crate::downstream) fn wire(req: &RequestHeader) -> Vec<u8> {
        let mut buf = Vec::new();
        req.header_to_h1_wire(&mut buf);
        buf
    }

    #[test]
    fn a_full_request_is_rebuilt_with_room_and_nothing_else_changes() {
        let mut req = request(
            b"/a/b?q=1",
            &[
                ("Host", "example.com"),
                ("X-Mixed-Case", "1"),
                ("accept", "a"),
                ("X-Mixed-Case", "2"),
            ],
        );
        req.extensions_mut().insert(7u32);
        let before = wire(&req);
        assert!(!has_room(&req, MOST_ADDED));
        make_room(&mut req, MOST_ADDED);
        assert!(has_room(&req, MOST_ADDED));
        assert_eq!(wire(&req), before, "fields, order and case kept");
        assert_eq!(req.raw_path(), b"/a/b?q=1");
        assert_eq!(req.uri.query(), Some("q=1"));
        assert_eq!(req.method, "GET");
        assert_eq!(req.extensions.get::<u32>(), Some(&7));
        let values: Vec<_> = req.headers.get_all("x-mixed-case").iter().collect();
        assert_eq!(values, ["1", "2"]);
        // Added fields keep their case and go after the request's own.
        req.insert_header("X-Added", "v").expect("insert");
        let text = String::from_utf8(wire(&req)).expect("ascii");
        assert!(text.ends_with("X-Added: v\r\n"), "{text}");
    }

    #[test]
    fn absolute_form_and_non_utf8_targets_keep_their_bytes() {
        let mut absolute = request(b"http://example.com/x?y", &[("Host", "example.com")]);
        make_room(&mut absolute, MOST_ADDED);
        assert_eq!(absolute.raw_path(), b"http://example.com/x?y");

        let mut lossy = request(b"/caf\xe9", &[("Host", "example.com")]);
        assert!(!lossy.raw_path_is_utf8());
        make_room(&mut lossy, MOST_ADDED);
        assert_eq!(lossy.raw_path(), b"/caf\xe9");
        assert!(!lossy.raw_path_is_utf8());
    }

    #[test]
    fn a_request_with_room_is_left_as_it_is() {
        let fields: Vec<(String, String)> = (0..15)
            .map(|i| (format!("x-f{i}"), i.to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut req = request(b"/", &refs);
        let capacity = req.headers.capacity();
        assert!(has_room(&req, MOST_ADDED), "capacity {capacity}");
        make_room(&mut req, MOST_ADDED);
        assert_eq!(req.headers.capacity(), capacity);
    }

    #[test]
    fn a_request_without_case_is_rebuilt_without_case() {
        let mut req = RequestHeader::build_no_case("POST", b"/p", Some(1)).expect("request");
        req.set_version(Version::HTTP_2);
        req.set_send_end_stream(false);
        req.append_header("content-type", "a/b").expect("field");
        make_room(&mut req, MOST_ADDED);
        assert!(has_room(&req, MOST_ADDED));
        assert!(!req.has_case());
        assert_eq!(req.version, Version::HTTP_2);
        assert_eq!(req.send_end_stream(), Some(false));
        assert_eq!(
            req.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"a/b"[..])
        );
        assert_eq!(req.method, "POST");
    }
}
