//! The routing decision: route match, then dye tag, then split, each group checked against a
//! read-only health view. No I/O; the one state it changes is the split's round-robin counter
//! (`smooth.next()`), so two equal requests may go to different groups by design.

use super::addresses::Addresses;
use super::group::{Group, GroupId};
use super::health::{AllHealthy, TargetHealth};
use super::policy::UnhealthyTag;
use super::request_parts::{values_of, Pair, Parsed};
use super::route::{Route, StickyKey};
use super::route::{TagFallback, TagFrom};
use super::table::RouteTable;
use dyegate_plugins::{DyeTag, StickyRanges, TagSource};
use http::{HeaderMap, Method};
use std::net::IpAddr;

/// What the decision needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub method: &'a Method,
    /// Lower-case host without port (see [`normalize_host`]).
    pub host: &'a str,
    /// The raw path, without the query.
    pub path: &'a str,
    /// The raw query, without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The request's one client address: the peer, or behind trusted proxies the address they
    /// forwarded (`dyegate_plugins::forwarded`); the source of the connection's PROXY protocol
    /// header counts as the peer. Tag trust, `match.client_ip` and sticky `client_ip` use it.
    pub client: Option<IpAddr>,
    /// Cookies and query parameters, parsed on first use (one per request, owned by the
    /// caller).
    pub parsed: &'a Parsed<'a>,
}

impl<'a> RequestInfo<'a> {
    /// The request's cookies, parsed on first use.
    pub fn cookie_pairs(&self) -> &'a [Pair<'a>] {
        self.parsed.cookies(self.headers)
    }

    /// The request's query parameters, decoded, parsed on first use.
    pub fn query_pairs(&self) -> &'a [Pair<'a>] {
        self.parsed.query(self.query)
    }
}

/// Why a group was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The request's tag names the group.
    Tag,
    /// Untagged; the smooth weighted split chose.
    Split,
    /// Untagged; the sticky split chose by the request's key.
    Sticky,
    /// The tag is unknown to the route; routed as untagged (`on_unknown_tag: base`).
    Fallback,
    /// The tag's group has no healthy target; routed as untagged (`on_unhealthy_tag: base`).
    FallbackUnhealthy,
    /// The group has no healthy target: answered 503 (set from [`Outcome::NoHealthyTarget`]).
    NoHealthyTarget,
    /// The group has `max_in_flight` requests in flight: answered 503 (set by the proxy).
    CircuitOpen,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Tag => "tag",
            Reason::Split => "split",
            Reason::Sticky => "sticky",
            Reason::Fallback => "fallback",
            Reason::FallbackUnhealthy => "fallback_unhealthy",
            Reason::NoHealthyTarget => "no_healthy_target",
            Reason::CircuitOpen => "circuit_open",
        }
    }
}

/// What to do with the tag header on the upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction<'t> {
    /// Forward the request's header as it is (or there is none).
    Keep,
    /// Remove it: it came from an untrusted peer or was malformed.
    Strip,
    /// Set it to this tag: the split chose a group that this tag names, so the call chain
    /// behind the gateway stays in that lane.
    Set(&'t str),
}

/// Where a routed request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'t> {
    pub route_id: usize,
    pub group: GroupId,
    pub reason: Reason,
    pub tag_action: TagAction<'t>,
    /// The tag the request travels with upstream, if any (given, or set by the split).
    pub tag: Option<&'t str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'t> {
    Routed(Decision<'t>),
    /// No route matches: 404.
    NoRoute,
    /// The tag is unknown and the route says `on_unknown_tag: reject`: 503.
    RejectedTag {
        route_id: usize,
    },
    /// Every target of the group the request goes to is unhealthy or ejected: 503 naming the
    /// group. (An untagged split never moves to another group by itself; a tagged lane does so
    /// only under `on_unhealthy_tag: base`.)
    NoHealthyTarget {
        route_id: usize,
        group: GroupId,
        tag: Option<&'t str>,
    },
}

impl RouteTable {
    /// Decides where a request goes, every target counted as healthy (and no DNS name
    /// resolved).
    pub fn decide<'t, 'r: 't>(&'t self, req: &RequestInfo<'r>) -> Outcome<'t> {
        self.decide_with(req, &AllHealthy, Addresses::none())
    }

    /// Decides where a request goes, with a view of which targets may be picked and the
    /// addresses the groups' DNS names have now (the request's one load of the address book).
    pub fn decide_with<'t, 'r: 't>(
        &'t self,
        req: &RequestInfo<'r>,
        health: &impl TargetHealth,
        addresses: &std::sync::Arc<Addresses>,
    ) -> Outcome<'t> {
        let routes = self.routes();
        let found = self.index().first_match(req.host, req.path, |id| {
            routes
                .get(id as usize)
                .is_some_and(|r| r.matcher.matches(req))
        });
        let Some((route_id, route)) =
            found.and_then(|id| Some((id as usize, routes.get(id as usize)?)))
        else {
            return Outcome::NoRoute;
        };
        let available = |g: GroupId| {
            self.groups()
                .get(g)
                .is_some_and(|g: &std::sync::Arc<Group>| {
                    g.with_members(addresses, |m| m.has_available(health))
                })
        };
        decide_in_route(route_id, route, req, available)
    }
}

fn decide_in_route<'t, 'r: 't>(
    route_id: usize,
    route: &'t Route,
    req: &RequestInfo<'r>,
    available: impl Fn(GroupId) -> bool,
) -> Outcome<'t> {
    match tag_step(route_id, route, req, &available) {
        TagStep::Done(outcome) => outcome,
        TagStep::Untagged(u) => {
            let split = &route.split;
            let sticky_pick =
                (split.sticky.as_ref()).and_then(|(key, ranges)| sticky_entry(key, ranges, req));
            let (entry, sticky) = match sticky_pick {
                Some(e) => (e, true),
                None => (split.smooth.next(), false),
            };
            finish(route_id, route, entry, sticky, &u, &available)
        }
    }
}

/// The request's tag as the route reads it, and where it came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadTag<'t> {
    pub tag: DyeTag<'t>,
    /// The index in `dye.from` of the source the tag came from (`None`: absent everywhere).
    pub from: Option<usize>,
    /// The request carries the tag header although `dye.from` does not read it: it must not
    /// travel upstream as a tag.
    pub stray_header: bool,
}

/// Reads the tag from the route's sources in order: the first one present wins (an untrusted
/// or malformed one too: it is stripped, not skipped).
pub(super) fn read_tag<'t>(route: &Route, req: &RequestInfo<'t>) -> ReadTag<'t> {
    let dye = &route.dye;
    let header = || req.headers.get(&dye.header).map(|v| v.as_bytes());
    let mut stray_header = true;
    for (i, source) in dye.from.iter().enumerate() {
        let raw = match source {
            TagFrom::Header => {
                stray_header = false;
                header()
            }
            TagFrom::Cookie(name) => values_of(req.cookie_pairs(), name).next(),
            TagFrom::Query(name) => values_of(req.query_pairs(), name).next(),
        };
        let tag = DyeTag::read(raw, req.client, &dye.trusted);
        if tag.source != TagSource::Absent {
            let stray_header = stray_header && !dye.from[i..].contains(&TagFrom::Header);
            return ReadTag {
                tag,
                from: Some(i),
                stray_header: stray_header && header().is_some(),
            };
        }
    }
    ReadTag {
        tag: DyeTag::read(None, None, &dye.trusted),
        from: None,
        stray_header: stray_header && header().is_some(),
    }
}

/// After the tag: either the decision is made (the tag's lane, or a rejection), or the split
/// decides, with what the tag left.
pub(super) enum TagStep<'t> {
    Done(Outcome<'t>),
    Untagged(Untagged<'t>),
}

pub(super) struct Untagged<'t> {
    pub read: ReadTag<'t>,
    pub fallback: Option<Reason>,
}

pub(super) fn tag_step<'t, 'r: 't>(
    route_id: usize,
    route: &'t Route,
    req: &RequestInfo<'r>,
    available: &impl Fn(GroupId) -> bool,
) -> TagStep<'t> {
    let read = read_tag(route, req);
    let mut fallback = None;
    if let Some(t) = read.tag.value {
        if let Some(group) = route.dye.group_for_tag(t) {
            if available(group) {
                return TagStep::Done(Outcome::Routed(Decision {
                    route_id,
                    group,
                    reason: Reason::Tag,
                    tag_action: kept(route, &read),
                    tag: Some(t),
                }));
            }
            match route.dye.on_unhealthy_tag {
                UnhealthyTag::Reject => {
                    return TagStep::Done(Outcome::NoHealthyTarget {
                        route_id,
                        group,
                        tag: Some(t),
                    })
                }
                UnhealthyTag::Base => fallback = Some(Reason::FallbackUnhealthy),
            }
        } else {
            match route.dye.on_unknown_tag {
                TagFallback::Reject => return TagStep::Done(Outcome::RejectedTag { route_id }),
                TagFallback::Base => fallback = Some(Reason::Fallback),
            }
        }
    }
    TagStep::Untagged(Untagged { read, fallback })
}

/// What becomes of the tag header when the request keeps its own tag: a header tag is
/// forwarded as it is; one from a cookie or the query is set as the header; a header that is
/// no tag source is removed.
fn kept<'t>(route: &Route, read: &ReadTag<'t>) -> TagAction<'t> {
    let from_header = read
        .from
        .is_none_or(|i| route.dye.from.get(i) == Some(&TagFrom::Header));
    match read.tag.value {
        Some(t) if !from_header => TagAction::Set(t),
        _ if read.stray_header => TagAction::Strip,
        _ => TagAction::Keep,
    }
}

/// The decision once the split entry is known (`sticky`: chosen by the request's key).
pub(super) fn finish<'t>(
    route_id: usize,
    route: &'t Route,
    entry: usize,
    sticky: bool,
    u: &Untagged<'t>,
    available: &impl Fn(GroupId) -> bool,
) -> Outcome<'t> {
    let group = route.split.groups.get(entry).copied().unwrap_or_default();
    let reason = match (u.fallback, sticky) {
        (Some(fallback), _) => fallback,
        (None, true) => Reason::Sticky,
        (None, false) => Reason::Split,
    };
    let (tag_action, tag) = match route.dye.tag_for_group(group) {
        Some(t) => (TagAction::Set(t.as_ref()), Some(t.as_ref())),
        None if u.read.tag.must_strip() => (TagAction::Strip, None),
        None => (kept(route, &u.read), u.read.tag.value),
    };
    if !available(group) {
        return Outcome::NoHealthyTarget {
            route_id,
            group,
            tag,
        };
    }
    Outcome::Routed(Decision {
        route_id,
        group,
        reason,
        tag_action,
        tag,
    })
}

/// The split entry for a request's sticky key; `None` when the request has no key.
pub(super) fn sticky_entry(
    key: &StickyKey,
    ranges: &StickyRanges,
    req: &RequestInfo<'_>,
) -> Option<usize> {
    match key {
        StickyKey::Header(name) => {
            let v = req.headers.get(name)?.as_bytes();
            (!v.is_empty()).then(|| ranges.entry_for_key(v))
        }
        StickyKey::Cookie(name) => {
            let v = values_of(req.cookie_pairs(), name.as_bytes()).next()?;
            (!v.is_empty()).then(|| ranges.entry_for_key(v))
        }
        StickyKey::ClientIp => match req.client? {
            IpAddr::V4(ip) => Some(ranges.entry_for_key(&ip.octets())),
            IpAddr::V6(ip) => Some(ranges.entry_for_key(&ip.octets())),
        },
    }
}

/// Host as routes see it: lower case, without port or trailing dot. IPv6 literals keep their
/// brackets.
pub fn normalize_host(raw: &str) -> std::borrow::Cow<'_, str> {
    let no_port = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |i| &raw[..=i])
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    let h = no_port.strip_suffix('.').unwrap_or(no_port);
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(h.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(h)
    }
}
