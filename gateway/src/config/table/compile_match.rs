//! `routes[i].match` and `dye.from` compiled: host names, paths, methods, header/query/cookie
//! conditions, client networks and tag sources become the typed conditions of
//! [`crate::routing::Matcher`]. Regexes are compiled here, once per table version, with a size
//! limit so a hostile pattern is refused at load.

use super::model::{MatchConfig, PathConfig, ValueConfig, ValueTestConfig};
use crate::config::error::Issue;
use crate::routing::{HostMatch, Matcher, Networks, PathMatch, TagFrom, ValueMatch};
use http::{HeaderName, HeaderValue, Method};
use regex::bytes::{Regex, RegexBuilder};

/// The most memory one compiled regex may take (`RegexBuilder::size_limit`): ample for a
/// path or header pattern, a refusal for `(a{100}){100}{100}` and its kind.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

pub fn compile_match(cfg: &MatchConfig, route: &str, issues: &mut Vec<Issue>) -> Matcher {
    let path = format!("{route}.match");
    let path = path.as_str();
    let mut m = Matcher::default();
    if let Some(host) = &cfg.host {
        match parse_host(host) {
            Some(h) => m.host = Some(h),
            None => issues.push(Issue::new(
                format!("{path}.host"),
                format!("found {host:?}, expected a host name such as shop.example.com or *.example.com"),
            )),
        }
    }
    m.path = match (&cfg.path_prefix, &cfg.path) {
        (Some(_), Some(_)) => {
            issues.push(Issue::new(
                format!("{path}.path"),
                "found both `path` and `path_prefix`, expected one of them (`path: { prefix: ... }` is `path_prefix`)",
            ));
            None
        }
        (Some(p), None) => {
            literal_path(p, &format!("{path}.path_prefix"), issues).map(PathMatch::Prefix)
        }
        (None, Some(p)) => path_match(p, &format!("{path}.path"), issues),
        (None, None) => None,
    };
    if let Some(methods) = &cfg.methods {
        m.methods = Some(methods_of(methods, path, issues));
    }
    for (name, value) in &cfg.headers.0 {
        let hpath = format!("{path}.headers.{name}");
        let Ok(h) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            issues.push(Issue::new(
                hpath,
                format!("found {name:?}, expected a valid HTTP header name"),
            ));
            continue;
        };
        if let Some(test) = value_match(value, &hpath, true, issues) {
            m.headers.push((h, test));
        }
    }
    for (name, value) in &cfg.query.0 {
        let qpath = format!("{path}.query.{name}");
        if name.is_empty() {
            issues.push(Issue::new(
                qpath.clone(),
                "found an empty name, expected a query parameter name such as env",
            ));
        }
        if let Some(test) = value_match(value, &qpath, false, issues) {
            m.query.push((name.as_bytes().into(), test));
        }
    }
    for (name, value) in &cfg.cookies.0 {
        let cpath = format!("{path}.cookies.{name}");
        if !is_cookie_name(name) {
            issues.push(Issue::new(
                cpath,
                format!(
                    "found {name:?}, expected a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
                ),
            ));
            continue;
        }
        if let Some(test) = value_match(value, &cpath, false, issues) {
            m.cookies.push((name.as_bytes().into(), test));
        }
    }
    if let Some(list) = &cfg.client_ip {
        let cpath = format!("{path}.client_ip");
        if list.is_empty() {
            issues.push(Issue::new(
                cpath.clone(),
                "found an empty list, expected at least one network (omit the field to match any)",
            ));
        }
        let nets = crate::config::networks::networks(list, &cpath, "10.0.0.0/8", issues);
        m.client_ip = Some(Networks(nets));
    }
    m
}

fn methods_of(methods: &[String], path: &str, issues: &mut Vec<Issue>) -> Vec<Method> {
    let mut out = Vec::new();
    for (k, name) in methods.iter().enumerate() {
        let upper = name.trim().to_ascii_uppercase();
        match Method::from_bytes(upper.as_bytes()) {
            Ok(meth) if !upper.is_empty() => out.push(meth),
            _ => issues.push(Issue::new(
                format!("{path}.methods[{k}]"),
                format!("found {name:?}, expected an HTTP method such as GET or POST"),
            )),
        }
    }
    if methods.is_empty() {
        issues.push(Issue::new(
            format!("{path}.methods"),
            "found an empty list, expected at least one method (omit the field to match any)",
        ));
    }
    out
}

/// A path as a prefix or exact path: starting with `/`, no spaces or control characters.
fn literal_path(p: &str, path: &str, issues: &mut Vec<Issue>) -> Option<String> {
    let ok = p.starts_with('/')
        && !p
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
    if !ok {
        issues.push(Issue::new(
            path,
            format!("found {p:?}, expected a path starting with / such as /api"),
        ));
    }
    ok.then(|| p.to_string())
}

fn path_match(cfg: &PathConfig, path: &str, issues: &mut Vec<Issue>) -> Option<PathMatch> {
    let given = [&cfg.prefix, &cfg.exact, &cfg.regex]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if given != 1 {
        issues.push(Issue::new(
            path,
            format!("found {given} of `prefix`, `exact`, `regex`, expected exactly one"),
        ));
        return None;
    }
    if let Some(p) = &cfg.prefix {
        return literal_path(p, &format!("{path}.prefix"), issues).map(PathMatch::Prefix);
    }
    if let Some(p) = &cfg.exact {
        return literal_path(p, &format!("{path}.exact"), issues).map(PathMatch::Exact);
    }
    let re = cfg.regex.as_deref()?;
    let prefix = literal_prefix(re).map(Into::into);
    regex(re, &format!("{path}.regex"), issues).map(|re| PathMatch::Regex { re, prefix })
}

/// The literal text every match of `pattern` starts with, when it is anchored at the start of
/// the path: `^/api/v[0-9]+/` → `/api/v`. `None` when unanchored, or when the first thing after
/// `^` is not literal (a class, a group, a case-insensitive letter).
pub fn literal_prefix(pattern: &str) -> Option<String> {
    use regex_syntax::hir::{HirKind, Look};
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    let (first, rest) = parts.split_first()?;
    if !matches!(first.kind(), HirKind::Look(Look::Start)) {
        return None;
    }
    let mut out = Vec::new();
    for part in rest {
        match part.kind() {
            HirKind::Literal(l) => out.extend_from_slice(&l.0),
            _ => break,
        }
    }
    String::from_utf8(out).ok().filter(|p| !p.is_empty())
}

/// A value condition; `header_values`: the listed values must be valid header values.
fn value_match(
    cfg: &ValueConfig,
    path: &str,
    header_values: bool,
    issues: &mut Vec<Issue>,
) -> Option<ValueMatch> {
    match cfg {
        ValueConfig::Values(values) => {
            if values.is_empty() {
                issues.push(Issue::new(
                    path,
                    "found an empty list, expected at least one allowed value",
                ));
            }
            values_of(values, path, header_values, issues).map(ValueMatch::OneOf)
        }
        ValueConfig::Test(t) => value_test(t, path, header_values, issues),
    }
}

fn value_test(
    t: &ValueTestConfig,
    path: &str,
    header_values: bool,
    issues: &mut Vec<Issue>,
) -> Option<ValueMatch> {
    let given = usize::from(t.regex.is_some())
        + usize::from(t.present.is_some())
        + usize::from(t.range.is_some())
        + usize::from(t.not.is_some());
    if given != 1 {
        issues.push(Issue::new(
            path,
            format!("found {given} of `regex`, `present`, `range`, `not`, expected exactly one"),
        ));
        return None;
    }
    if let Some(re) = &t.regex {
        return regex(re, &format!("{path}.regex"), issues).map(ValueMatch::Regex);
    }
    if let Some(p) = t.present {
        return Some(ValueMatch::Present(p));
    }
    if let Some(r) = &t.range {
        return match r[..] {
            [lo, hi] if lo.0 <= hi.0 => Some(ValueMatch::Range(lo.0, hi.0)),
            _ => {
                issues.push(Issue::new(
                    format!("{path}.range"),
                    format!(
                        "found [{}], expected [LO, HI]: two whole numbers with LO <= HI (inclusive)",
                        r.iter().map(|b| b.0.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ));
                None
            }
        };
    }
    let not = t.not.as_ref()?;
    if not.0.is_empty() {
        issues.push(Issue::new(
            format!("{path}.not"),
            "found an empty list, expected at least one value",
        ));
    }
    values_of(&not.0, &format!("{path}.not"), header_values, issues).map(ValueMatch::NoneOf)
}

fn values_of(
    values: &[String],
    path: &str,
    header_values: bool,
    issues: &mut Vec<Issue>,
) -> Option<Vec<Box<[u8]>>> {
    let before = issues.len();
    for (k, v) in values.iter().enumerate() {
        if header_values && HeaderValue::from_str(v).is_err() {
            issues.push(Issue::new(
                format!("{path}[{k}]"),
                format!("found {v:?}, expected a valid HTTP header value"),
            ));
        }
    }
    (issues.len() == before).then(|| values.iter().map(|v| v.as_bytes().into()).collect())
}

/// A regex with the size limit, as a located issue when it does not compile.
fn regex(pattern: &str, path: &str, issues: &mut Vec<Issue>) -> Option<Regex> {
    match RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
    {
        Ok(re) => Some(re),
        Err(e) => {
            let why = match &e {
                regex::Error::CompiledTooBig(limit) => {
                    format!("it compiles past the limit of {limit} bytes")
                }
                // The last line of a syntax error says what is wrong (the lines above repeat
                // the pattern with a caret).
                _ => (e.to_string().lines().last())
                    .map_or_else(String::new, |l| l.trim_start_matches("error: ").to_string()),
            };
            issues.push(Issue::new(
                path,
                format!(
                    "found {}, expected a regular expression ({why})",
                    crate::config::yaml::quote(pattern)
                ),
            ));
            None
        }
    }
}

/// `dye.from`: `header`, `cookie:NAME`, `query:NAME`, each once; absent = `[header]`.
pub fn tag_sources(from: Option<&[String]>, route: &str, issues: &mut Vec<Issue>) -> Vec<TagFrom> {
    let Some(list) = from else {
        return vec![TagFrom::Header];
    };
    let path = format!("{route}.dye.from");
    if list.is_empty() {
        issues.push(Issue::new(
            path.clone(),
            "found an empty list, expected at least one of `header`, `cookie:NAME`, `query:NAME` (omit the field for [header])",
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (k, spec) in list.iter().enumerate() {
        let source = match spec.trim().split_once(':') {
            None if spec.trim() == "header" => Some(TagFrom::Header),
            Some(("cookie", name)) if is_cookie_name(name.trim()) => {
                Some(TagFrom::Cookie(name.trim().as_bytes().into()))
            }
            Some(("query", name)) if !name.trim().is_empty() => {
                Some(TagFrom::Query(name.trim().as_bytes().into()))
            }
            _ => None,
        };
        match source {
            Some(s) if out.contains(&s) => issues.push(Issue::new(
                format!("{path}[{k}]"),
                format!("found {spec:?} twice, expected each source once"),
            )),
            Some(s) => out.push(s),
            None => issues.push(Issue::new(
                format!("{path}[{k}]"),
                format!("found {spec:?}, expected `header`, `cookie:NAME` or `query:NAME`"),
            )),
        }
    }
    out
}

/// RFC 6265 cookie-name: an HTTP token.
pub fn is_cookie_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `shop.example.com` or `*.example.com`, lower-cased.
fn parse_host(h: &str) -> Option<HostMatch> {
    let h = h.trim().to_ascii_lowercase();
    let h = h.strip_suffix('.').unwrap_or(&h);
    let (wild, name) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h),
    };
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return None;
    }
    Some(if wild {
        HostMatch::Suffix(format!(".{name}"))
    } else {
        HostMatch::Exact(name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::literal_prefix;

    #[test]
    fn literal_prefixes_of_anchored_patterns() {
        for (pattern, want) in [
            ("^/api/v[0-9]+/", Some("/api/v")),
            ("^/api/v1/items$", Some("/api/v1/items")),
            ("^/shop", Some("/shop")),
            ("/api/v[0-9]+/", None),
            ("^(/api|/web)", None),
            ("(?i)^/API", Some("/")),
            ("^[a-z]", None),
            ("^/a|^/b", None),
            ("(?m)^/a", None),
            ("^/caf\u{e9}/x", Some("/café/x")),
        ] {
            assert_eq!(literal_prefix(pattern).as_deref(), want, "{pattern}");
        }
    }
}
