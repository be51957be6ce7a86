//! One side's answer as the comparison sees it (`compare:`): the status, the headers that are
//! compared, the body's length and a CRC-32 of it computed as it streams (never held whole;
//! past the limit only the length is kept), and the pure verdict on two of them. No I/O.

use super::Outcome;
use crate::routing::Compare;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// Response headers never compared: hop-by-hop ones, the framing (`content-length` differs
/// with chunked answers; the body's length is compared on its own) and `date`.
const NEVER_COMPARED: [HeaderName; 9] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TRANSFER_ENCODING,
    http::header::TE,
    http::header::TRAILER,
    http::header::UPGRADE,
    http::header::CONTENT_LENGTH,
    http::header::DATE,
];

/// A whole answer, summarized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub status: u16,
    /// The compared headers in arrival order (a repeated header once per value).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub len: u64,
    /// CRC-32 of the whole body; `None` past the limit it was taken with.
    pub crc: Option<u32>,
    pub latency: Duration,
}

/// A [`Summary`] while the body streams through.
pub struct Summarizer {
    status: u16,
    headers: Vec<(HeaderName, HeaderValue)>,
    len: u64,
    crc: Option<crc32fast::Hasher>,
    limit: u64,
}

impl Summarizer {
    /// An answer with this head whose body is hashed up to `limit` bytes.
    pub fn new(status: u16, headers: &HeaderMap, limit: u64) -> Self {
        let headers = (headers.iter())
            .filter(|(n, _)| !NEVER_COMPARED.contains(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        Summarizer {
            status,
            headers,
            len: 0,
            crc: Some(crc32fast::Hasher::new()),
            limit,
        }
    }

    /// A piece of the body.
    pub fn chunk(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        if self.len > self.limit {
            self.crc = None;
        } else if let Some(crc) = self.crc.as_mut() {
            crc.update(data);
        }
    }

    /// The body has ended.
    pub fn finish(self, latency: Duration) -> Summary {
        Summary {
            status: self.status,
            headers: self.headers,
            len: self.len,
            crc: self.crc.map(crc32fast::Hasher::finalize),
            latency,
        }
    }
}

/// What the comparison of two whole answers found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// [`Outcome::Match`], [`Outcome::StatusMismatch`] or [`Outcome::BodyMismatch`].
    pub outcome: Outcome,
    /// The names of the headers whose values differ (or that only one side has), sorted.
    pub headers: Vec<String>,
    /// A match only because the baseline showed the same differences: noise.
    pub noise: bool,
}

/// Compares the real answer with the shadow's as `compare` says; bodies longer than `limit`
/// (either side) are compared by length only. A status difference wins; then a body or
/// header difference is a `body_mismatch` (the answer's content differs). With the
/// `baseline`'s answer (a second copy to the stable group), a body difference it shows
/// against the real answer too, and the headers it differs in too, are discounted; a status
/// difference never is.
pub fn judge(
    compare: &Compare,
    limit: u64,
    primary: &Summary,
    shadow: &Summary,
    baseline: Option<&Summary>,
) -> Verdict {
    let mut headers = differing_headers(compare, primary, shadow);
    let mut body = bodies_differ(compare, limit, primary, shadow);
    let mut discounted = false;
    if let Some(base) = baseline {
        if body && bodies_differ(compare, limit, primary, base) {
            body = false;
            discounted = true;
        }
        let noise = differing_headers(compare, primary, base);
        let before = headers.len();
        headers.retain(|h| !noise.contains(h));
        discounted |= headers.len() != before;
    }
    let outcome = if compare.status && primary.status != shadow.status {
        Outcome::StatusMismatch
    } else if body || !headers.is_empty() {
        Outcome::BodyMismatch
    } else {
        Outcome::Match
    };
    Verdict {
        outcome,
        headers,
        noise: discounted && outcome == Outcome::Match,
    }
}

fn bodies_differ(compare: &Compare, limit: u64, a: &Summary, b: &Summary) -> bool {
    compare.body && (a.len != b.len || (a.len <= limit && b.len <= limit && a.crc != b.crc))
}

/// Header names compared by their values in order, less `ignore_headers`.
fn differing_headers(compare: &Compare, primary: &Summary, shadow: &Summary) -> Vec<String> {
    let values = |s: &Summary, name: &HeaderName| -> Vec<HeaderValue> {
        (s.headers.iter())
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut out: Vec<String> = Vec::new();
    if !compare.headers {
        return out;
    }
    for (name, _) in primary.headers.iter().chain(&shadow.headers) {
        if compare.ignore_headers.contains(name) || out.iter().any(|o| o == name.as_str()) {
            continue;
        }
        if values(primary, name) != values(shadow, name) {
            out.push(name.as_str().to_string());
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], chunks: &[&[u8]], limit: u64) -> Summary {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        let mut s = Summarizer::new(status, &map, limit);
        for c in chunks {
            s.chunk(c);
        }
        s.finish(Duration::from_millis(3))
    }

    fn compare(ignore: &[&'static str]) -> Compare {
        Compare {
            status: true,
            body: true,
            headers: true,
            ignore_headers: ignore.iter().map(|h| HeaderName::from_static(h)).collect(),
            baseline: None,
        }
    }

    #[test]
    fn the_hash_streams_and_stops_past_the_limit() {
        let whole = answer(200, &[], &[b"hello world"], 64);
        let pieces = answer(200, &[], &[b"hel", b"lo wo", b"rld"], 64);
        assert_eq!(whole, pieces);
        assert_eq!(whole.crc, Some(crc32fast::hash(b"hello world")));
        let long = answer(200, &[], &[b"hello", b" world"], 8);
        assert_eq!((long.len, long.crc), (11, None));
    }

    #[test]
    fn status_then_body_then_headers() {
        let c = compare(&["x-request-id"]);
        let a = answer(200, &[("x-request-id", "1"), ("date", "a")], &[b"ok"], 64);
        let same = answer(200, &[("x-request-id", "2"), ("date", "b")], &[b"ok"], 64);
        assert_eq!(judge(&c, 64, &a, &same, None).outcome, Outcome::Match);
        let failed = answer(500, &[], &[b"no"], 64);
        let v = judge(&c, 64, &a, &failed, None);
        assert_eq!(v.outcome, Outcome::StatusMismatch);
        let one_byte = answer(200, &[], &[b"oK"], 64);
        assert_eq!(
            judge(&c, 64, &a, &one_byte, None).outcome,
            Outcome::BodyMismatch
        );
        let header = answer(200, &[("x-version", "2")], &[b"ok"], 64);
        let v = judge(&c, 64, &a, &header, None);
        assert_eq!(
            (v.outcome, v.headers),
            (Outcome::BodyMismatch, vec!["x-version".to_string()])
        );
        // Past the limit: the length only.
        let (x, y) = (
            answer(200, &[], &[b"abcdef"], 4),
            answer(200, &[], &[b"abcdeg"], 4),
        );
        assert_eq!(judge(&c, 4, &x, &y, None).outcome, Outcome::Match);
        let z = answer(200, &[], &[b"abcdefg"], 4);
        assert_eq!(judge(&c, 4, &x, &z, None).outcome, Outcome::BodyMismatch);
        // body: ignore, status: false.
        let lax = Compare {
            status: false,
            body: false,
            ..compare(&[])
        };
        // headers: false: the differing header is not looked at.
        let no_headers = Compare {
            headers: false,
            ..compare(&[])
        };
        let with_version = answer(200, &[("x-version", "2")], &[b"hello"], 64);
        let without = answer(200, &[("x-version", "1")], &[b"hello"], 64);
        assert_eq!(
            judge(&no_headers, 64, &without, &with_version, None).outcome,
            Outcome::Match
        );
        assert_eq!(
            judge(&compare(&[]), 64, &without, &with_version, None).outcome,
            Outcome::BodyMismatch
        );
        assert_eq!(
            judge(&lax, 64, &a, &failed, None).outcome,
            Outcome::BodyMismatch
        );
        assert_eq!(
            judge(&lax, 64, &a, &one_byte, None).outcome,
            Outcome::BodyMismatch
        );
        let plain = answer(200, &[("x-request-id", "1")], &[b"other"], 64);
        assert_eq!(judge(&lax, 64, &a, &plain, None).outcome, Outcome::Match);
    }

    #[test]
    fn what_the_baseline_shows_too_is_noise() {
        let c = compare(&[]);
        let real = answer(200, &[("x-at", "1"), ("x-version", "1")], &[b"t=1"], 64);
        let base = answer(200, &[("x-at", "2"), ("x-version", "1")], &[b"t=2"], 64);
        let same_noise = answer(200, &[("x-at", "3"), ("x-version", "1")], &[b"t=3"], 64);
        let v = judge(&c, 64, &real, &same_noise, Some(&base));
        assert_eq!((v.outcome, v.noise), (Outcome::Match, true));
        assert_eq!(
            judge(&c, 64, &real, &same_noise, None).outcome,
            Outcome::BodyMismatch
        );
        // A header the baseline agrees on still counts.
        let new = answer(200, &[("x-at", "3"), ("x-version", "2")], &[b"t=3"], 64);
        let v = judge(&c, 64, &real, &new, Some(&base));
        assert_eq!(
            (v.outcome, v.headers, v.noise),
            (Outcome::BodyMismatch, vec!["x-version".to_string()], false)
        );
        // A body the baseline agrees on, and any status difference, still count.
        let stable_body = answer(200, &[("x-at", "2"), ("x-version", "1")], &[b"t=1"], 64);
        let v = judge(&c, 64, &real, &same_noise, Some(&stable_body));
        assert_eq!(v.outcome, Outcome::BodyMismatch);
        let failed = answer(500, &[("x-at", "3"), ("x-version", "1")], &[b"t=3"], 64);
        let base_failed = answer(500, &[("x-at", "2"), ("x-version", "1")], &[b"t=2"], 64);
        let v = judge(&c, 64, &real, &failed, Some(&base_failed));
        assert_eq!(v.outcome, Outcome::StatusMismatch);
        // Nothing to discount: a plain match is not noise.
        let v = judge(&c, 64, &real, &real, Some(&base));
        assert_eq!((v.outcome, v.noise), (Outcome::Match, false));
    }
}
