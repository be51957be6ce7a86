//! The immutable routing table: routes in file order, upstream groups, and the lookup index.

use super::group::{Group, GroupId};
use super::index::RouteIndex;
use super::route::Route;

#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    groups: Vec<Group>,
    index: RouteIndex,
}

impl RouteTable {
    /// Builds the table and its index. Routes keep their file order; their ids are their
    /// positions.
    pub fn new(routes: Vec<Route>, groups: Vec<Group>) -> RouteTable {
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

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn route(&self, id: usize) -> Option<&Route> {
        self.routes.get(id)
    }

    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(id)
    }

    /// Continues every split and target round-robin of `old` whose configuration is unchanged
    /// (same route name, same groups and weights; same group name and targets), so the realised
    /// shares stay exact across reloads.
    pub fn inherit_positions(&self, old: &RouteTable) {
        let old_routes: std::collections::HashMap<&str, &Route> =
            old.routes.iter().map(|r| (r.name.as_ref(), r)).collect();
        for r in &self.routes {
            let Some(o) = old_routes.get(r.name.as_ref()) else {
                continue;
            };
            let names = |t: &RouteTable, ids: &[GroupId]| -> Vec<String> {
                ids.iter()
                    .map(|g| t.group(*g).map_or(String::new(), |g| g.name.to_string()))
                    .collect()
            };
            if r.split.weights == o.split.weights
                && names(self, &r.split.groups) == names(old, &o.split.groups)
            {
                r.split.smooth.resume_at(o.split.smooth.position());
            }
        }
        let old_groups: std::collections::HashMap<&str, &Group> =
            old.groups.iter().map(|g| (g.name.as_ref(), g)).collect();
        for g in &self.groups {
            if let Some(o) = old_groups.get(g.name.as_ref()) {
                g.inherit_position(o);
            }
        }
    }

    pub(super) fn index(&self) -> &RouteIndex {
        &self.index
    }
}
