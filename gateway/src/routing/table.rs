//! The immutable routing table: routes in file order, upstream groups, and the lookup index.

use super::carried::{carried_from, Carried};
use super::group::{Group, GroupId};
use super::index::RouteIndex;
use super::route::Route;
use std::sync::Arc;

/// Routes and groups are shared (`Arc`) so that a reload can carry an unchanged route or group
/// over from the running table as it is, round-robin position included, without compiling it
/// again (see `config::table::compile`).
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
    groups: Vec<Arc<Group>>,
    index: RouteIndex,
    /// Some group has a DNS name (a request then reads the address book).
    has_names: bool,
}

impl RouteTable {
    /// Builds the table and its index. Routes keep their file order; their ids are their
    /// positions.
    pub fn new(routes: Vec<Arc<Route>>, groups: Vec<Arc<Group>>) -> RouteTable {
        let mut index = RouteIndex::default();
        for (id, r) in routes.iter().enumerate() {
            index.insert(
                r.matcher.host.as_ref(),
                r.matcher.path.as_ref().and_then(|p| p.index_prefix()),
                id as u32,
            );
        }
        RouteTable {
            has_names: groups.iter().any(|g| g.is_resolved()),
            routes,
            groups,
            index,
        }
    }

    /// Whether some group has a `NAME:PORT` target: only then does a request read the
    /// addresses of DNS names.
    pub fn has_names(&self) -> bool {
        self.has_names
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
    /// shares stay exact across reloads. Routes and groups that `carried` says are `old`'s own
    /// need nothing; only the others are looked up by name (`Carried::default()`: all of them).
    pub fn inherit_positions(&self, old: &RouteTable, carried: &Carried) {
        let fresh_routes: Vec<&Arc<Route>> = (self.routes.iter().enumerate())
            .filter(|(i, r)| carried_from(carried.route(*i), &old.routes, r).is_none())
            .map(|(_, r)| r)
            .collect();
        let fresh_groups: Vec<&Arc<Group>> = (self.groups.iter().enumerate())
            .filter(|(i, g)| carried_from(carried.group(*i), &old.groups, g).is_none())
            .map(|(_, g)| g)
            .collect();
        // A few edited entries: a scan of the old table beats building a map of all its names.
        let old_route = ByName::new(&old.routes, fresh_routes.len(), |r| r.name.as_ref());
        let old_group = ByName::new(&old.groups, fresh_groups.len(), |g| g.name.as_ref());
        fn name<'t>(t: &'t RouteTable, id: &GroupId) -> Option<&'t str> {
            t.group(*id).map(|g| g.name.as_ref())
        }
        for r in fresh_routes {
            let Some(o) = old_route.get(r.name.as_ref()) else {
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
        for g in fresh_groups {
            if let Some(o) = old_group.get(g.name.as_ref()) {
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

/// A lookup by name among a table's routes or groups: a linear scan for a few lookups, a map
/// for many.
enum ByName<'a, T> {
    Scan(&'a [Arc<T>], fn(&T) -> &str),
    Map(foldhash::HashMap<&'a str, &'a Arc<T>>),
}

impl<'a, T> ByName<'a, T> {
    fn new(items: &'a [Arc<T>], wanted: usize, name: fn(&T) -> &str) -> Self {
        if wanted <= 16 {
            ByName::Scan(items, name)
        } else {
            ByName::Map(items.iter().map(|i| (name(i), i)).collect())
        }
    }

    fn get(&self, n: &str) -> Option<&'a Arc<T>> {
        match self {
            ByName::Scan(items, name) => items.iter().find(|i| name(i) == n),
            ByName::Map(map) => map.get(n).copied(),
        }
    }
}
