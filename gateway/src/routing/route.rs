//! A compiled route: typed matchers, dye-tag policy and split. Built only by `config::table::compile`.

use super::conditions::{Networks, PathMatch, ValueMatch};
use super::decide::RequestInfo;
use super::group::GroupId;
use super::request_parts::values_of;
use bytes::Bytes;
use dyegate_plugins::{SmoothWrr, StickyRanges, TrustedSources};
use http::{HeaderName, HeaderValue, Method};
use std::sync::Arc;

#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    pub matcher: Matcher,
    pub dye: Dye,
    pub split: Split,
    pub timeouts: super::Timeouts,
    pub retries: super::Retries,
    /// `limits`: the route's request rate limit.
    pub limits: Option<Arc<super::RateLimit>>,
    /// `https_redirect`: plain-HTTP requests are answered 308 to the HTTPS URL.
    pub https_redirect: bool,
    /// `mirror`: copies of a share of the route's requests to other groups.
    pub mirror: Vec<super::Mirror>,
}

/// The `match` section. Host and path are also used by the index; they are kept here so a
/// route can be checked on its own.
#[derive(Debug, Default)]
pub struct Matcher {
    pub host: Option<HostMatch>,
    pub path: Option<PathMatch>,
    pub methods: Option<Vec<Method>>,
    pub headers: Vec<(HeaderName, ValueMatch)>,
    /// Parameter names percent-decoded, as the request's are.
    pub query: Vec<(Box<[u8]>, ValueMatch)>,
    pub cookies: Vec<(Box<[u8]>, ValueMatch)>,
    pub client_ip: Option<Networks>,
}

/// `shop.example.com` (exact) or `*.example.com` (any subdomain, one or more labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    /// The suffix including its leading dot: `.example.com`.
    Suffix(String),
}

impl HostMatch {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(h) => h == host,
            HostMatch::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

/// One condition of a route's `match`, by position: what the decision header and `explain`
/// name (`Cond::name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Host,
    Path,
    Methods,
    /// `headers`, by entry.
    Header(usize),
    Query(usize),
    Cookie(usize),
    ClientIp,
}

impl Matcher {
    /// Whether every condition holds (host and path are checked by the index, and again here
    /// so the function is complete on its own).
    pub fn matches(&self, req: &RequestInfo<'_>) -> bool {
        self.check(req).is_ok()
    }

    /// The first condition that does not hold, in the order [`Matcher::conditions`] lists
    /// them. Cookies and the query are parsed (once per request) only when the route has
    /// conditions on them and every condition before holds.
    pub fn check(&self, req: &RequestInfo<'_>) -> Result<(), Cond> {
        if let Some(h) = &self.host {
            if !h.matches(req.host) {
                return Err(Cond::Host);
            }
        }
        if let Some(p) = &self.path {
            if !p.matches(req.path) {
                return Err(Cond::Path);
            }
        }
        if let Some(methods) = &self.methods {
            if !methods.contains(req.method) {
                return Err(Cond::Methods);
            }
        }
        for (i, (name, test)) in self.headers.iter().enumerate() {
            let lines = req.headers.get_all(name).into_iter();
            if !test.holds(lines.map(|v| v.as_bytes())) {
                return Err(Cond::Header(i));
            }
        }
        if !self.query.is_empty() {
            let pairs = req.query_pairs();
            for (i, (name, test)) in self.query.iter().enumerate() {
                if !test.holds(values_of(pairs, name)) {
                    return Err(Cond::Query(i));
                }
            }
        }
        if !self.cookies.is_empty() {
            let pairs = req.cookie_pairs();
            for (i, (name, test)) in self.cookies.iter().enumerate() {
                if !test.holds(values_of(pairs, name)) {
                    return Err(Cond::Cookie(i));
                }
            }
        }
        match &self.client_ip {
            Some(nets) if !nets.contains(req.client) => Err(Cond::ClientIp),
            _ => Ok(()),
        }
    }

    /// Every condition the route has, in the order they are checked.
    pub fn conditions(&self) -> Vec<Cond> {
        let mut out = Vec::new();
        out.extend(self.host.as_ref().map(|_| Cond::Host));
        out.extend(self.path.as_ref().map(|_| Cond::Path));
        out.extend(self.methods.as_ref().map(|_| Cond::Methods));
        out.extend((0..self.headers.len()).map(Cond::Header));
        out.extend((0..self.query.len()).map(Cond::Query));
        out.extend((0..self.cookies.len()).map(Cond::Cookie));
        out.extend(self.client_ip.as_ref().map(|_| Cond::ClientIp));
        out
    }

    /// A condition as the config names it: `host`, `path`, `methods`, `headers.x-region`,
    /// `query.env`, `cookies.plan`, `client_ip`.
    pub fn name(&self, c: Cond) -> String {
        let keyed = |kind: &str, name: Option<&[u8]>| {
            format!(
                "{kind}.{}",
                String::from_utf8_lossy(name.unwrap_or_default())
            )
        };
        match c {
            Cond::Host => "host".into(),
            Cond::Path => "path".into(),
            Cond::Methods => "methods".into(),
            Cond::Header(i) => keyed(
                "headers",
                self.headers.get(i).map(|(n, _)| n.as_str().as_bytes()),
            ),
            Cond::Query(i) => keyed("query", self.query.get(i).map(|(n, _)| &n[..])),
            Cond::Cookie(i) => keyed("cookies", self.cookies.get(i).map(|(n, _)| &n[..])),
            Cond::ClientIp => "client_ip".into(),
        }
    }
}

/// The `dye` section.
#[derive(Debug)]
pub struct Dye {
    pub header: HeaderName,
    /// What setting the header upstream needs, prepared (boxed: the routing decision never
    /// reads it, and a `Route` stays as small as before for the decision's sake).
    pub upstream: Box<DyeUpstream>,
    /// `dye.from`: where the tag may come from, in order; the first source present wins.
    pub from: Vec<TagFrom>,
    /// Tag → group, in file order (routes have few tags; a linear scan beats hashing).
    pub tags: Vec<(Arc<str>, GroupId)>,
    pub on_unknown_tag: TagFallback,
    pub on_unhealthy_tag: super::UnhealthyTag,
    pub trusted: TrustedSources,
    /// `dye.limits`: the rate limit of tagged requests (instead of the route's).
    pub limits: Option<Arc<super::RateLimit>>,
}

/// The dye header as it is set on the upstream request, made when the table is compiled.
#[derive(Debug)]
pub struct DyeUpstream {
    /// The header's name as Pingora keeps a name's case: shared by every insert (a
    /// `HeaderName` is copied per insert).
    pub header_case: Bytes,
    /// The tags of `Dye::tags` as header values, in the same order: set without a copy.
    pub tag_values: Vec<HeaderValue>,
}

impl Dye {
    pub fn group_for_tag(&self, tag: &str) -> Option<GroupId> {
        self.tags
            .iter()
            .find(|(t, _)| t.as_ref() == tag)
            .map(|(_, g)| *g)
    }

    /// The tag that names `group`, if any (the first one in file order).
    pub fn tag_for_group(&self, group: GroupId) -> Option<&Arc<str>> {
        self.tags.iter().find(|(_, g)| *g == group).map(|(t, _)| t)
    }
}

/// A place a request's tag may come from (`dye.from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFrom {
    /// The header `dye.header` (its first line).
    Header,
    /// `cookie:NAME`: the first pair of that name.
    Cookie(Box<[u8]>),
    /// `query:NAME`: the first parameter of that (percent-decoded) name, value decoded.
    Query(Box<[u8]>),
}

impl TagFrom {
    /// As the config writes it: `header`, `cookie:NAME`, `query:NAME`.
    pub fn label(&self) -> String {
        match self {
            TagFrom::Header => "header".into(),
            TagFrom::Cookie(n) => format!("cookie:{}", String::from_utf8_lossy(n)),
            TagFrom::Query(n) => format!("query:{}", String::from_utf8_lossy(n)),
        }
    }
}

/// What a tagged request gets when its tag cannot be served as such (`on_unknown_tag`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TagFallback {
    /// Routed as if untagged: the split decides.
    #[default]
    Base,
    /// Answered with 503.
    Reject,
}

/// What a sticky split hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyKey {
    Header(HeaderName),
    Cookie(String),
    ClientIp,
}

/// The `split` section (with `sticky`).
#[derive(Debug)]
pub struct Split {
    pub groups: Vec<GroupId>,
    pub weights: Vec<u32>,
    pub smooth: SmoothWrr,
    pub sticky: Option<(StickyKey, StickyRanges)>,
}
