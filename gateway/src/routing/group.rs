//! An upstream group: interchangeable targets picked by weighted round-robin among those the
//! health view says may be picked. Its entries are addresses (`IP:PORT`) or DNS names
//! (`NAME:PORT`); a group with names has no fixed member set: the set comes from the
//! [`AddressBook`](super::AddressBook) of the moment, built once per change of its names'
//! addresses and then shared by every request until the next change.

use super::addresses::Addresses;
use super::members::{Members, Target};
use super::policy::GroupPolicy;
use super::transport::Transport;
use arc_swap::ArcSwap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::Arc;

/// Index of a group in its [`super::RouteTable`].
pub type GroupId = usize;

/// A target as routes.yaml names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetEntry {
    /// `IP:PORT`: one target.
    Addr(Target),
    /// `NAME:PORT`: one target per address the name resolves to, each with the entry's weight.
    Name(NamedTarget),
}

impl TargetEntry {
    pub fn weight(&self) -> u32 {
        match self {
            TargetEntry::Addr(t) => t.weight,
            TargetEntry::Name(n) => n.weight,
        }
    }
}

/// A `NAME:PORT` entry: the host name (lower case, no trailing dot), the port and the weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTarget {
    pub host: Arc<str>,
    pub port: u16,
    pub weight: u32,
}

impl std::fmt::Display for NamedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug)]
pub struct Group {
    pub name: Arc<str>,
    /// Health checks, outlier ejection, circuit breaker.
    pub policy: GroupPolicy,
    /// Protocol, TLS and how each target's peer is prepared.
    pub transport: Transport,
    /// As written, in file order.
    entries: Vec<TargetEntry>,
    members: Membership,
}

#[derive(Debug)]
enum Membership {
    /// Only `IP:PORT` entries: built at compile time.
    Fixed(Members),
    /// Some `NAME:PORT` entries: the set built from the last address book seen.
    Resolved(ArcSwap<Built>),
}

/// A member set and what it was built from.
#[derive(Debug)]
struct Built {
    /// The book it was built from: while the book is that one, the set is current.
    book: Arc<Addresses>,
    /// Per entry, the address list of its name in that book (`None` for an address entry or a
    /// name without answer): another book with the same lists needs no new set.
    sources: Vec<Option<Arc<[IpAddr]>>>,
    members: Arc<Members>,
}

/// A group's member set as a request sees it: the fixed set, borrowed from the table, or the
/// resolved set of the moment, shared.
pub enum MembersRef<'g> {
    Fixed(&'g Members),
    Resolved(Arc<Members>),
}

impl Deref for MembersRef<'_> {
    type Target = Members;
    fn deref(&self) -> &Members {
        match self {
            MembersRef::Fixed(m) => m,
            MembersRef::Resolved(m) => m,
        }
    }
}

impl MembersRef<'_> {
    /// The resolved set, for a request to keep (`None` for a fixed set: the table has it).
    pub fn into_shared(self) -> Option<Arc<Members>> {
        match self {
            MembersRef::Fixed(_) => None,
            MembersRef::Resolved(m) => Some(m),
        }
    }
}

impl Group {
    /// `None` when no entry has a positive weight.
    pub fn new(name: &str, entries: Vec<TargetEntry>, transport: Transport) -> Option<Group> {
        if entries.iter().all(|e| e.weight() == 0) {
            return None;
        }
        let named = entries.iter().any(|e| matches!(e, TargetEntry::Name(_)));
        let members = if named {
            let empty = Arc::new(Addresses::default());
            let (members, sources) = build(&entries, &empty, &transport);
            Membership::Resolved(ArcSwap::from_pointee(Built {
                book: empty,
                sources,
                members: Arc::new(members),
            }))
        } else {
            let targets = (entries.iter())
                .filter_map(|e| match e {
                    TargetEntry::Addr(t) => Some(t.clone()),
                    TargetEntry::Name(_) => None,
                })
                .collect();
            Membership::Fixed(Members::new(targets, &transport))
        };
        Some(Group {
            name: name.into(),
            policy: GroupPolicy::default(),
            transport,
            entries,
            members,
        })
    }

    /// A group of `IP:PORT` targets in cleartext HTTP/1.1 (tests, benches).
    pub fn of_addrs(name: &str, targets: &[(SocketAddr, u32)]) -> Option<Group> {
        let entries = (targets.iter())
            .map(|(a, w)| TargetEntry::Addr(Target::at(*a, *w)))
            .collect();
        Group::new(name, entries, Transport::plain())
    }

    pub fn with_policy(mut self, policy: GroupPolicy) -> Group {
        self.policy = policy;
        self
    }

    /// The entries as written (`/routes`, the DNS service's list of names).
    pub fn entries(&self) -> &[TargetEntry] {
        &self.entries
    }

    /// The `NAME:PORT` entries.
    pub fn names(&self) -> impl Iterator<Item = &NamedTarget> {
        self.entries.iter().filter_map(|e| match e {
            TargetEntry::Name(n) => Some(n),
            TargetEntry::Addr(_) => None,
        })
    }

    /// Whether some entry is a DNS name (its targets change without a new table).
    pub fn is_resolved(&self) -> bool {
        matches!(self.members, Membership::Resolved(_))
    }

    /// The set of a group without names; `None` for a group with names (ask [`Self::members`]).
    pub fn fixed_members(&self) -> Option<&Members> {
        match &self.members {
            Membership::Fixed(m) => Some(m),
            Membership::Resolved(_) => None,
        }
    }

    /// The targets requests pick from now: the fixed set, or the one `now` (the address
    /// book's snapshot the caller loaded) gives the group's names: built when the names'
    /// addresses changed since the last call, else the same set (one load and a pointer
    /// comparison).
    pub fn members<'g>(&'g self, now: &Arc<Addresses>) -> MembersRef<'g> {
        let cache = match &self.members {
            Membership::Fixed(m) => return MembersRef::Fixed(m),
            Membership::Resolved(cache) => cache,
        };
        let built = cache.load();
        if Arc::ptr_eq(&built.book, now) {
            return MembersRef::Resolved(built.members.clone());
        }
        let sources = sources(&self.entries, now);
        let same = built.sources.len() == sources.len()
            && (built.sources.iter().zip(&sources)).all(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            });
        let members = if same {
            built.members.clone()
        } else {
            Arc::new(build(&self.entries, now, &self.transport).0)
        };
        // Two requests may both build after a change: either set is the current one.
        cache.store(Arc::new(Built {
            book: Arc::clone(now),
            sources,
            members: members.clone(),
        }));
        MembersRef::Resolved(members)
    }

    /// `f` on the targets of the moment, without taking a share of them (no reference count
    /// touched when the set is current): for a question asked and answered at once, such as the
    /// decision's "may any target be picked?".
    pub fn with_members<R>(&self, now: &Arc<Addresses>, f: impl FnOnce(&Members) -> R) -> R {
        let cache = match &self.members {
            Membership::Fixed(m) => return f(m),
            Membership::Resolved(cache) => cache,
        };
        let built = cache.load();
        if Arc::ptr_eq(&built.book, now) {
            f(&built.members)
        } else {
            drop(built);
            f(&self.members(now))
        }
    }

    /// Continues the round-robin where `old` was, when it has the same fixed targets (a reload
    /// must not restart the cycle: that skews shares when reloads are frequent). A group with
    /// names builds its set from the address book on its first request.
    pub fn inherit_position(&self, old: &Group) {
        if let (Some(new), Some(old)) = (self.fixed_members(), old.fixed_members()) {
            new.inherit_position(old);
        }
    }
}

/// Per entry, its name's address list in `book`.
fn sources(entries: &[TargetEntry], book: &Addresses) -> Vec<Option<Arc<[IpAddr]>>> {
    (entries.iter())
        .map(|e| match e {
            TargetEntry::Name(n) => book.get(&n.host).cloned(),
            TargetEntry::Addr(_) => None,
        })
        .collect()
}

/// The member set `entries` stand for in `book`: file order, a name's addresses in sorted
/// order; an address that two entries give is a target once, with the first entry's weight.
fn build(
    entries: &[TargetEntry],
    book: &Arc<Addresses>,
    transport: &Transport,
) -> (Members, Vec<Option<Arc<[IpAddr]>>>) {
    let sources = sources(entries, book);
    let mut seen = foldhash::HashSet::default();
    let mut targets = Vec::new();
    for (e, addrs) in entries.iter().zip(&sources) {
        match e {
            TargetEntry::Addr(t) => {
                if seen.insert(t.addr) {
                    targets.push(t.clone());
                }
            }
            TargetEntry::Name(n) => {
                for ip in addrs.iter().flat_map(|a| a.iter()) {
                    let addr = SocketAddr::new(*ip, n.port);
                    if seen.insert(addr) {
                        targets.push(Target {
                            addr,
                            weight: n.weight,
                            host: Some(n.host.clone()),
                        });
                    }
                }
            }
        }
    }
    (Members::new(targets, transport), sources)
}
