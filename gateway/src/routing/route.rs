//! A compiled route: typed matchers, dye-tag policy and split. Built only by `config::table::compile`.

use super::group::GroupId;
use dyegate_plugins::{SmoothWrr, StickyRanges, TrustedSources};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
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
}

/// The `match` section. Host and path prefix are also used by the index; they are kept here so
/// a route can be checked on its own.
#[derive(Debug, Default)]
pub struct Matcher {
    pub host: Option<HostMatch>,
    pub path_prefix: Option<String>,
    pub methods: Option<Vec<Method>>,
    pub headers: Vec<(HeaderName, Vec<HeaderValue>)>,
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

impl Matcher {
    /// Whether the method and header conditions hold (host and path are checked by the index,
    /// and again here so the function is complete on its own).
    pub fn matches(&self, method: &Method, host: &str, path: &str, headers: &HeaderMap) -> bool {
        if let Some(h) = &self.host {
            if !h.matches(host) {
                return false;
            }
        }
        if let Some(p) = &self.path_prefix {
            if !path.starts_with(p.as_str()) {
                return false;
            }
        }
        if let Some(methods) = &self.methods {
            if !methods.contains(method) {
                return false;
            }
        }
        self.headers.iter().all(|(name, allowed)| {
            headers
                .get_all(name)
                .iter()
                .any(|v| allowed.iter().any(|a| a == v))
        })
    }
}

/// The `dye` section.
#[derive(Debug)]
pub struct Dye {
    pub header: HeaderName,
    /// Tag → group, in file order (routes have few tags; a linear scan beats hashing).
    pub tags: Vec<(Arc<str>, GroupId)>,
    pub on_unknown_tag: TagFallback,
    pub on_unhealthy_tag: super::UnhealthyTag,
    pub trusted: TrustedSources,
    /// `dye.limits`: the rate limit of tagged requests (instead of the route's).
    pub limits: Option<Arc<super::RateLimit>>,
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
