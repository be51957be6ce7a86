//! The decision explained, without making it: which route a request would get and why (per
//! route tried in file order, the condition that failed), its tag and where it came from, and
//! for a split the groups with their weights. Uses the decision's own steps (`decide.rs`) and
//! the matchers' own checks, but tries routes in file order instead of through the index, and
//! never advances a split: `dyegate explain`, `POST /explain` and the `match=`/`miss=` parts of
//! `x-dyegate-decision` are built on it.

use super::addresses::Addresses;
use super::decide::{finish, sticky_entry, tag_step, Outcome, Reason, RequestInfo, TagStep};
use super::group::{Group, GroupId};
use super::health::{AllHealthy, TargetHealth};
use super::route::{Cond, TagFrom};
use super::table::RouteTable;
use dyegate_plugins::TagSource;
use std::sync::Arc;

/// What the decision would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preview<'t> {
    /// Known in advance: no route, a rejected tag, a tag's lane, a sticky key's group, or no
    /// healthy target.
    Decided(Outcome<'t>),
    /// The route's smooth split picks the group: its next pick cannot be known in advance
    /// (every request moves it). `tag` is the request's own tag, as it would go upstream
    /// unless the split picks a group one of the route's tags names.
    Split {
        route_id: usize,
        reason: Reason,
        tag: Option<&'t str>,
    },
}

/// A route tried in file order: the condition that failed, or `None` for the route taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tried {
    pub route: usize,
    pub failed: Option<Cond>,
}

/// A request's decision, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained<'t> {
    pub preview: Preview<'t>,
    /// Every route before the one taken (all of them for no route), then the one taken.
    pub tried: Vec<Tried>,
    /// Where the route read the tag from (`None`: no source had one, or no route).
    pub tag_from: Option<&'t TagFrom>,
    /// Whether the tag counted (`Given`), or was ignored and stripped.
    pub tag_source: TagSource,
}

impl RouteTable {
    /// Explains the decision with every target counted as healthy.
    pub fn explain<'t, 'r: 't>(&'t self, req: &RequestInfo<'r>) -> Explained<'t> {
        self.explain_with(req, &AllHealthy, Addresses::none())
    }

    /// Explains the decision `decide_with` would make with the same health view.
    pub fn explain_with<'t, 'r: 't>(
        &'t self,
        req: &RequestInfo<'r>,
        health: &impl TargetHealth,
        addresses: &Arc<Addresses>,
    ) -> Explained<'t> {
        let mut tried = Vec::new();
        let mut taken = None;
        for (id, route) in self.routes().iter().enumerate() {
            match route.matcher.check(req) {
                Ok(()) => {
                    tried.push(Tried {
                        route: id,
                        failed: None,
                    });
                    taken = Some((id, &**route));
                    break;
                }
                Err(c) => tried.push(Tried {
                    route: id,
                    failed: Some(c),
                }),
            }
        }
        let Some((route_id, route)) = taken else {
            return Explained {
                preview: Preview::Decided(Outcome::NoRoute),
                tried,
                tag_from: None,
                tag_source: TagSource::Absent,
            };
        };
        let available = |g: GroupId| {
            (self.groups().get(g)).is_some_and(|g: &Arc<Group>| {
                g.with_members(addresses, |m| m.has_available(health))
            })
        };
        let read = super::decide::read_tag(route, req);
        let tag_from = read.from.and_then(|i| route.dye.from.get(i));
        let preview = match tag_step(route_id, route, req, &available) {
            TagStep::Done(outcome) => Preview::Decided(outcome),
            TagStep::Untagged(u) => {
                let sticky = (route.split.sticky.as_ref())
                    .and_then(|(key, ranges)| sticky_entry(key, ranges, req));
                match sticky {
                    Some(entry) => {
                        Preview::Decided(finish(route_id, route, entry, true, &u, &available))
                    }
                    None => Preview::Split {
                        route_id,
                        reason: u.fallback.unwrap_or(Reason::Split),
                        tag: (!u.read.tag.must_strip())
                            .then_some(u.read.tag.value)
                            .flatten(),
                    },
                }
            }
        };
        Explained {
            preview,
            tried,
            tag_from,
            tag_source: read.tag.source,
        }
    }
}

impl Explained<'_> {
    /// The route taken, if any.
    pub fn route_id(&self) -> Option<usize> {
        (self.tried.last()).and_then(|t| t.failed.is_none().then_some(t.route))
    }

    /// The conditions that held on the route taken, as `x-dyegate-decision` says them after
    /// `match=`: `host,path,cookies.plan`; `any` for a route without conditions, `none` without
    /// a route.
    pub fn matched(&self, table: &RouteTable) -> String {
        let Some(route) = self.route_id().and_then(|id| table.route(id)) else {
            return "none".into();
        };
        let conds = route.matcher.conditions();
        if conds.is_empty() {
            return "any".into();
        }
        let names: Vec<String> = conds.iter().map(|c| route.matcher.name(*c)).collect();
        names.join(",")
    }

    /// The nearest miss, as `x-dyegate-decision` says it after `miss=`: of the routes tried
    /// before (all of them for no route) that got past their first condition, the one that
    /// failed furthest into its conditions (the first such in file order), as
    /// `ROUTE:CONDITION`; `none` when there is no such route.
    pub fn miss(&self, table: &RouteTable) -> String {
        let mut best: Option<(usize, usize, Cond)> = None;
        for t in &self.tried {
            let (Some(failed), Some(route)) = (t.failed, table.route(t.route)) else {
                continue;
            };
            let held = (route.matcher.conditions().iter())
                .position(|c| *c == failed)
                .unwrap_or_default();
            if held > 0 && best.is_none_or(|(_, h, _)| held > h) {
                best = Some((t.route, held, failed));
            }
        }
        match best.and_then(|(id, _, c)| Some((table.route(id)?, c))) {
            Some((route, c)) => format!("{}:{}", route.name, route.matcher.name(c)),
            None => "none".into(),
        }
    }
}
