//! The parts of a request that need parsing before a route can look at them: its cookies and
//! its query parameters. Parsed lazily, at most once per request, and only when a route with
//! cookie or query conditions (or a tag source that reads them) is tried: a table of plain
//! routes never parses either.

use http::{header, HeaderMap};
use std::borrow::Cow;
use std::cell::OnceCell;

/// A name and its value, as the request wrote them (cookies) or percent-decoded (query).
pub type Pair<'r> = (Cow<'r, [u8]>, Cow<'r, [u8]>);

/// The request's cookies and query parameters, each parsed on first use. Owned by the caller
/// of the decision (one per request), so a tag read from them can borrow from it.
#[derive(Debug, Default)]
pub struct Parsed<'r> {
    cookies: OnceCell<Vec<Pair<'r>>>,
    query: OnceCell<Vec<Pair<'r>>>,
}

impl<'r> Parsed<'r> {
    /// Every `name=value` pair of the `Cookie` header lines, in order (a repeated name keeps
    /// every pair). Values keep their bytes, without surrounding double quotes.
    pub fn cookies(&'r self, headers: &'r HeaderMap) -> &'r [Pair<'r>] {
        self.cookies.get_or_init(|| parse_cookies(headers))
    }

    /// Every parameter of the query (without the `?`), in order, name and value
    /// percent-decoded (`+` is a space, as forms write it).
    pub fn query(&'r self, query: Option<&'r str>) -> &'r [Pair<'r>] {
        self.query
            .get_or_init(|| query.map(parse_query).unwrap_or_default())
    }
}

impl Parsed<'_> {
    /// Whether the cookies and the query have been parsed.
    #[cfg(test)]
    pub fn touched(&self) -> (bool, bool) {
        (self.cookies.get().is_some(), self.query.get().is_some())
    }
}

/// The values of `name` among `pairs`.
pub fn values_of<'p, 'n>(
    pairs: &'p [Pair<'_>],
    name: &'n [u8],
) -> impl Iterator<Item = &'p [u8]> + use<'p, 'n> {
    pairs
        .iter()
        .filter(move |(n, _)| n.as_ref() == name)
        .map(|(_, v)| v.as_ref())
}

fn parse_cookies(headers: &HeaderMap) -> Vec<Pair<'_>> {
    let mut out = Vec::new();
    for line in headers.get_all(header::COOKIE) {
        for pair in line.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                continue;
            };
            let v = pair[eq + 1..].trim_ascii();
            let v = (v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\""))).unwrap_or(v);
            out.push((Cow::Borrowed(pair[..eq].trim_ascii()), Cow::Borrowed(v)));
        }
    }
    out
}

fn parse_query(query: &str) -> Vec<Pair<'_>> {
    (query.as_bytes().split(|b| *b == b'&'))
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|b| *b == b'=') {
            Some(eq) => (decode(&p[..eq]), decode(&p[eq + 1..])),
            None => (decode(p), Cow::Borrowed(&b""[..])),
        })
        .collect()
}

/// Percent-decoded, `+` as a space; borrowed when there is nothing to decode.
fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'+') {
        return percent_encoding::percent_decode(raw).into();
    }
    let spaced: Vec<u8> = (raw.iter())
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    Cow::Owned(percent_encoding::percent_decode(&spaced).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn strings(pairs: &[Pair<'_>]) -> Vec<(String, String)> {
        (pairs.iter())
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn cookies_from_every_line() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; plan=pro ;b=\"q\""),
        );
        h.append(header::COOKIE, HeaderValue::from_static("plan=free; junk"));
        let p = Parsed::default();
        let pairs = p.cookies(&h);
        assert_eq!(
            strings(pairs),
            [("a", "1"), ("plan", "pro"), ("b", "q"), ("plan", "free")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let plans: Vec<&[u8]> = values_of(pairs, b"plan").collect();
        assert_eq!(plans, [&b"pro"[..], b"free"]);
    }

    #[test]
    fn query_decoded() {
        let p = Parsed::default();
        let pairs = p.query(Some("env=canary&q=a%20b+c&flag&&x%3D=1%26"));
        assert_eq!(
            strings(pairs),
            [
                ("env", "canary"),
                ("q", "a b c"),
                ("flag", ""),
                ("x=", "1&")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert!(Parsed::default().query(None).is_empty());
    }
}
