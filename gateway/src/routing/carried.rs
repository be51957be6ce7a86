//! What a new version of the table carries over from the one it replaces.

use super::table::RouteTable;
use std::sync::Arc;

/// For each group and route of a new version, the index in the previous version of the entry it
/// is carried over from, if any. Config fills it when decoding (an entry whose text is unchanged:
/// `groups[i]` is upstream `i` of the file) and compile narrows it to what it actually shared
/// (the same `Arc`); position carry-over and metric handles then skip those entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    pub groups: Vec<Option<usize>>,
    pub routes: Vec<Option<usize>>,
}

impl Carried {
    /// Which routes and groups of `table` are `old`'s own, found by address (for a table that
    /// was not compiled after `old`, e.g. a kept version being rolled back to).
    pub fn by_identity(table: &RouteTable, old: &RouteTable) -> Carried {
        fn positions<T>(new: &[Arc<T>], old: &[Arc<T>]) -> Vec<Option<usize>> {
            let at: foldhash::HashMap<*const T, usize> = (old.iter().enumerate())
                .map(|(j, o)| (Arc::as_ptr(o), j))
                .collect();
            new.iter()
                .map(|n| at.get(&Arc::as_ptr(n)).copied())
                .collect()
        }
        Carried {
            routes: positions(table.routes(), old.routes()),
            groups: positions(table.groups(), old.groups()),
        }
    }

    /// The previous index of group `i`, if it is carried over.
    pub fn group(&self, i: usize) -> Option<usize> {
        self.groups.get(i).copied().flatten()
    }

    /// The previous index of route `i`, if it is carried over.
    pub fn route(&self, i: usize) -> Option<usize> {
        self.routes.get(i).copied().flatten()
    }
}

/// `old[at]` when `item` is that very `Arc` (carried over, not merely at the same index).
pub(super) fn carried_from<'a, T>(
    at: Option<usize>,
    old: &'a [Arc<T>],
    item: &Arc<T>,
) -> Option<&'a Arc<T>> {
    at.and_then(|j| old.get(j)).filter(|o| Arc::ptr_eq(o, item))
}
