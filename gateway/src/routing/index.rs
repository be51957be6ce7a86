//! The lookup index of a route table: by host (exact, wildcard suffix, any), then by path
//! prefix. A lookup costs a few hash probes whatever the number of routes, and returns the
//! lowest-numbered matching route, so first-match-in-file-order semantics are kept.

use std::collections::HashMap;

/// Route ids per path prefix, for the routes of one host key.
#[derive(Debug, Default)]
struct PathIndex {
    by_prefix: HashMap<Box<str>, Vec<u32>>,
    /// Distinct prefix lengths present, ascending: only these slices of a path are probed.
    lengths: Vec<usize>,
    /// Routes without a path prefix.
    no_prefix: Vec<u32>,
}

impl PathIndex {
    fn insert(&mut self, prefix: Option<&str>, id: u32) {
        match prefix {
            None | Some("") => self.no_prefix.push(id),
            Some(p) => {
                self.by_prefix.entry(p.into()).or_default().push(id);
                if let Err(at) = self.lengths.binary_search(&p.len()) {
                    self.lengths.insert(at, p.len());
                }
            }
        }
    }

    /// Calls `visit` with each candidate list (every list ascending).
    fn candidates<'a>(&'a self, path: &str, visit: &mut impl FnMut(&'a [u32]) -> bool) -> bool {
        if !self.no_prefix.is_empty() && visit(&self.no_prefix) {
            return true;
        }
        for &len in &self.lengths {
            if len > path.len() {
                break;
            }
            if !path.is_char_boundary(len) {
                continue;
            }
            if let Some(ids) = self.by_prefix.get(&path[..len]) {
                if visit(ids) {
                    return true;
                }
            }
        }
        false
    }
}

/// Host, then path-prefix index over a table's routes.
#[derive(Debug, Default)]
pub struct RouteIndex {
    exact: HashMap<Box<str>, PathIndex>,
    /// Keyed by the suffix with its leading dot (`*.example.com` → `.example.com`).
    suffix: HashMap<Box<str>, PathIndex>,
    any_host: PathIndex,
}

impl RouteIndex {
    /// Adds route `id`; ids must be added in ascending order.
    pub fn insert(&mut self, host: Option<&super::HostMatch>, prefix: Option<&str>, id: u32) {
        let index = match host {
            None => &mut self.any_host,
            Some(super::HostMatch::Exact(h)) => self.exact.entry(h.as_str().into()).or_default(),
            Some(super::HostMatch::Suffix(s)) => self.suffix.entry(s.as_str().into()).or_default(),
        };
        index.insert(prefix, id);
    }

    /// The lowest route id among candidates for `host` and `path` for which `matches` holds.
    pub fn first_match(
        &self,
        host: &str,
        path: &str,
        matches: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let mut best = u32::MAX;
        let mut visit = |ids: &[u32]| {
            for &id in ids {
                if id >= best {
                    break;
                }
                if matches(id) {
                    best = id;
                    break;
                }
            }
            // Route 0 cannot be beaten: stop probing.
            best == 0
        };
        if let Some(ix) = self.exact.get(host) {
            ix.candidates(path, &mut visit);
        }
        if !self.suffix.is_empty() {
            for (i, b) in host.bytes().enumerate() {
                if b == b'.' && i > 0 {
                    if let Some(ix) = self.suffix.get(&host[i..]) {
                        ix.candidates(path, &mut visit);
                    }
                }
            }
        }
        self.any_host.candidates(path, &mut visit);
        (best != u32::MAX).then_some(best)
    }
}
