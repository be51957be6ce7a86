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

    pub(super) fn index(&self) -> &RouteIndex {
        &self.index
    }
}
