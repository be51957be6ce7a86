//! The immutable routing table: routes in file order, upstream groups, and the lookup index.

use super::group::{Group, GroupId};
use super::index::RouteIndex;
use super::route::Route;
use std::sync::Arc;

/// Routes and groups are shared (`Arc`) so that a reload can carry an unchanged route or group
/// over from the running table as it is, round-robin position included, without compiling it
/// again (see `config::compile`).
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
    groups: Vec<Arc<Group>>,
    index: RouteIndex,
}

impl RouteTable {
    /// Builds the table and its index. Routes keep their file order; their ids are their
    /// positions.
    pub fn new(routes: Vec<Arc<Route>>, groups: Vec<Arc<Group>>) -> RouteTable {
        let mut index = RouteIndex::default();
        for (id, r) in routes.iter().enumerate() {
            index.insert(
                r.matcher.host.as_ref(),
                r.matcher.path_prefix.as_deref(),
                id as u32,
            );
        }
        RouteTable {
            routes,
            groups,
            index,
        }
    }

    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    pub fn groups(&self) -> &[Arc<Group>] {
        &self.groups
    }

    pub fn route(&self, id: usize) -> Option<&Route> {
        self.routes.get(id).map(|r| &**r)
    }

    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(id).map(|g| &**g)
    }

    /// Continues every split and target round-robin of `old` whose configuration is unchanged
    /// (same route name, same groups and weights; same group name and targets), so the realised
    /// shares stay exact across reloads.
    pub fn inherit_positions(&self, old: &RouteTable) {
        let old_routes: foldhash::HashMap<&str, &Arc<Route>> =
            old.routes.iter().map(|r| (r.name.as_ref(), r)).collect();
        fn name<'t>(t: &'t RouteTable, id: &GroupId) -> Option<&'t str> {
            t.group(*id).map(|g| g.name.as_ref())
        }
        for r in &self.routes {
            let Some(o) = old_routes.get(r.name.as_ref()) else {
                continue;
            };
            if Arc::ptr_eq(r, o) {
                continue; // carried over: it is the same split
            }
            if r.split.weights == o.split.weights
                && r.split.groups.len() == o.split.groups.len()
                && r.split
                    .groups
                    .iter()
                    .zip(&o.split.groups)
                    .all(|(a, b)| name(self, a) == name(old, b))
            {
                r.split.smooth.resume_at(o.split.smooth.position());
            }
        }
        let old_groups: foldhash::HashMap<&str, &Arc<Group>> =
            old.groups.iter().map(|g| (g.name.as_ref(), g)).collect();
        for g in &self.groups {
            if let Some(o) = old_groups.get(g.name.as_ref()) {
                if !Arc::ptr_eq(g, o) {
                    g.inherit_position(o);
                }
            }
        }
    }

    pub(super) fn index(&self) -> &RouteIndex {
        &self.index
    }
}
