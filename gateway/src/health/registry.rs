//! The health of every target address and the load of every group, outside the routing table.
//! Shared by the proxy (which reads it once per request as a [`HealthView`] and reports the
//! attempts it makes) and the checker (which runs checks and follows the table's targets).

use super::target::{Attempt, Change, TargetRecord, TargetState};
use crate::routing::{AddressBook, Group, Members, RouteTable, TargetHealth};
use crate::telemetry::ContainmentMetrics;
use dashmap::DashMap;
use log::warn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Requests in flight to one group (the circuit breaker counts these).
#[derive(Debug, Default)]
pub struct GroupLoad {
    pub in_flight: AtomicU32,
}

/// Counts one request in flight to a group until dropped.
#[derive(Debug)]
pub struct GroupGuard(Arc<GroupLoad>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one attempt in flight to a target until dropped.
#[derive(Debug)]
pub struct TargetGuard(Arc<TargetState>);

impl Drop for TargetGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per-target health and per-group load, keyed by address and by group name.
pub struct HealthRegistry {
    epoch: Instant,
    targets: DashMap<SocketAddr, Arc<TargetState>, foldhash::fast::RandomState>,
    groups: DashMap<Arc<str>, Arc<GroupLoad>, foldhash::fast::RandomState>,
    /// At least the number of down marks (unhealthy verdicts plus ejections) of all targets:
    /// raised at once by each transition to down, set to the exact count by [`Self::sweep`].
    /// Zero means every target may be picked, and the decision asks nothing per target.
    down: AtomicUsize,
    metrics: Arc<ContainmentMetrics>,
}

impl HealthRegistry {
    pub fn new(metrics: Arc<ContainmentMetrics>) -> Self {
        HealthRegistry {
            epoch: Instant::now(),
            targets: DashMap::default(),
            groups: DashMap::default(),
            down: AtomicUsize::new(0),
            metrics,
        }
    }

    /// Milliseconds on the registry's clock.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// How a registry time compares to now: milliseconds from now (negative: in the past).
    pub fn ms_from_now(&self, at_ms: u64) -> i64 {
        at_ms as i64 - self.now_ms() as i64
    }

    /// The view a request decides with.
    pub fn view(&self) -> HealthView<'_> {
        let any_down = self.down.load(Ordering::Relaxed) > 0;
        HealthView {
            registry: self,
            now_ms: if any_down { self.now_ms() } else { 0 },
            any_down,
        }
    }

    /// A target's state (created healthy when first seen).
    pub fn target(&self, addr: SocketAddr) -> Arc<TargetState> {
        if let Some(t) = self.targets.get(&addr) {
            return t.clone();
        }
        self.targets.entry(addr).or_default().clone()
    }

    pub fn get(&self, addr: SocketAddr) -> Option<Arc<TargetState>> {
        self.targets.get(&addr).map(|t| t.clone())
    }

    fn group_load(&self, name: &Arc<str>) -> Arc<GroupLoad> {
        if let Some(g) = self.groups.get(name) {
            return g.clone();
        }
        self.groups.entry(name.clone()).or_default().clone()
    }

    /// Requests in flight to the group now.
    pub fn group_in_flight(&self, name: &str) -> u32 {
        self.groups
            .get(name)
            .map_or(0, |g| g.in_flight.load(Ordering::Relaxed))
    }

    /// Counts a request in flight to `group`; `None` when that would pass its `max_in_flight`
    /// (the circuit is open: nothing is queued).
    pub fn enter_group(&self, group: &Group) -> Option<GroupGuard> {
        let load = self.group_load(&group.name);
        let before = load.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = GroupGuard(load);
        match group.policy.max_in_flight {
            Some(max) if before >= max => None, // the guard's drop takes the count back
            _ => Some(guard),
        }
    }

    /// Counts an attempt in flight to `addr`.
    pub fn enter_target(&self, addr: SocketAddr) -> TargetGuard {
        let t = self.target(addr);
        t.in_flight.fetch_add(1, Ordering::Relaxed);
        TargetGuard(t)
    }

    /// Reports how a real request's attempt on `addr` (a target of `group`, one of `members`,
    /// the group's targets as the request saw them) ended: outlier detection ejects it after
    /// `consecutive_failures`, unless that would eject more than `max_ejected_percent` of the
    /// group's targets (one may always be ejected, unless the percentage is 0).
    pub fn report(&self, group: &Group, members: &Members, addr: SocketAddr, attempt: Attempt) {
        let Some(state) = self.get(addr) else { return };
        self.report_on(group, members, addr, &state, attempt);
    }

    /// [`Self::report`] on the state the attempt's [`TargetGuard`] holds: no lookup.
    pub fn report_guarded(
        &self,
        group: &Group,
        members: &Members,
        addr: SocketAddr,
        guard: &TargetGuard,
        attempt: Attempt,
    ) {
        self.report_on(group, members, addr, &guard.0, attempt);
    }

    fn report_on(
        &self,
        group: &Group,
        members: &Members,
        addr: SocketAddr,
        state: &TargetState,
        attempt: Attempt,
    ) {
        // Only a failure is timed (a success reads no clock: it is every request's case).
        let now = match attempt {
            Attempt::Success => 0,
            Attempt::Failure => self.now_ms(),
        };
        let Some(ejection) = state.record(attempt, group.policy.outlier.as_ref(), now) else {
            return;
        };
        let pct = group
            .policy
            .outlier
            .map_or(0, |o| usize::from(o.max_ejected_percent));
        let live = members.targets().iter().filter(|t| t.weight > 0).count();
        let allowed = if pct == 0 {
            0
        } else {
            (live * pct / 100).max(1)
        };
        let ejected = (members.targets().iter())
            .filter(|t| t.addr != addr)
            .filter(|t| {
                self.get(t.addr)
                    .and_then(|s| s.ejected_until())
                    .is_some_and(|until| until > now)
            })
            .count();
        if ejected >= allowed {
            return;
        }
        if state.eject(ejection, now) {
            self.down.fetch_add(1, Ordering::Relaxed);
            self.metrics.ejection(&group.name, addr);
            warn!(
                "target {addr} of upstream group {} ejected for {} ms after {} consecutive failures",
                group.name,
                ejection.time.as_millis(),
                group.policy.outlier.map_or(0, |o| o.consecutive_failures)
            );
        }
    }

    /// Applies a finished check's verdict change, if `state` is still the registered state of
    /// `addr` (a check of a target removed meanwhile changes nothing).
    pub fn check_done(&self, addr: SocketAddr, state: &Arc<TargetState>, change: Change) {
        let current = self
            .targets
            .get(&addr)
            .is_some_and(|t| Arc::ptr_eq(&t, state));
        if current && change == Change::Down {
            self.down.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ends ejections that ran out and sets the down count to the exact number of marks.
    pub fn sweep(&self) {
        if self.down.load(Ordering::Relaxed) == 0 {
            return;
        }
        let now = self.now_ms();
        let mut marks = 0;
        for t in self.targets.iter() {
            t.expire_ejection(now);
            marks += usize::from(!t.checks_healthy()) + usize::from(t.ejected_until().is_some());
        }
        self.down.store(marks, Ordering::Relaxed);
    }

    /// Follows the table's targets and groups (a group with DNS names: the addresses `book`
    /// gives them now): new ones start healthy, removed ones are forgotten (with their series of
    /// `dyegate_target_healthy`) once no attempt on them is in flight (an address a name no
    /// longer gives is drained: its requests finish, and are counted, on its state).
    pub fn sync(&self, table: &RouteTable, book: &AddressBook) {
        let now = book.load_full();
        let members: Vec<_> = table.groups().iter().map(|g| g.members(&now)).collect();
        let mut wanted = foldhash::HashSet::default();
        for m in &members {
            for t in m.targets() {
                wanted.insert(t.addr);
                if !self.targets.contains_key(&t.addr) {
                    self.targets.entry(t.addr).or_default();
                }
            }
        }
        self.targets
            .retain(|a, state| wanted.contains(a) || state.in_flight.load(Ordering::Relaxed) > 0);
        let names: foldhash::HashSet<&str> =
            table.groups().iter().map(|g| g.name.as_ref()).collect();
        self.groups.retain(|n, load| {
            names.contains(n.as_ref()) || load.in_flight.load(Ordering::Relaxed) > 0
        });
        let pairs: foldhash::HashSet<(&str, SocketAddr)> = (table.groups().iter())
            .zip(&members)
            .flat_map(|(g, m)| m.targets().iter().map(|t| (g.name.as_ref(), t.addr)))
            .collect();
        self.metrics
            .retain_targets(|group, target| pairs.contains(&(group, target)));
        // Every target's series exists from the moment its table is applied (the checker keeps
        // it current); a scrape never sees the series set grow under traffic.
        let now = self.now_ms();
        for (group, addr) in pairs {
            let up = self.get(addr).is_none_or(|t| t.is_available(now));
            self.metrics.set_healthy(group, addr, up);
        }
        // A removed target may have been down: recount.
        self.down.store(usize::MAX / 2, Ordering::Relaxed);
        self.sweep();
    }

    /// Every target's state, as an upgrade hands it over.
    pub fn export(&self) -> Vec<(SocketAddr, TargetRecord)> {
        let now = self.now_ms();
        (self.targets.iter())
            .map(|t| (*t.key(), t.value().export(now)))
            .collect()
    }

    /// Takes handed-over states (`passed_ms` after their export) for the targets this
    /// registry follows; then the down marks are counted again.
    pub fn restore(&self, records: &[(SocketAddr, TargetRecord)], passed_ms: u64) -> usize {
        let now = self.now_ms();
        let mut n = 0;
        for (addr, r) in records {
            if let Some(t) = self.get(*addr) {
                t.restore(r, passed_ms, now);
                n += 1;
            }
        }
        self.down.store(usize::MAX / 2, Ordering::Relaxed);
        self.sweep();
        n
    }

    /// Number of targets known.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// What a request sees of target health: taken once, asked per target only when some target
/// is down.
pub struct HealthView<'a> {
    registry: &'a HealthRegistry,
    now_ms: u64,
    any_down: bool,
}

impl TargetHealth for HealthView<'_> {
    fn any_down(&self) -> bool {
        self.any_down
    }

    fn is_available(&self, addr: SocketAddr) -> bool {
        !self.any_down
            || self
                .registry
                .targets
                .get(&addr)
                .is_none_or(|t| t.is_available(self.now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::routes_from_text;

    fn table(outlier: &str) -> Arc<RouteTable> {
        let text = format!(
            "upstreams:\n  g: {{ targets: [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\", \"127.0.0.1:4\"], outlier: {outlier} }}\nroutes:\n  - {{ name: r, split: [{{ upstream: g, weight: 1 }}] }}\n"
        );
        routes_from_text("routes.yaml", text.into_bytes(), None)
            .unwrap_or_else(|e| panic!("{e}"))
            .table
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Fails every target of the group `n` times, in port order.
    fn fail_all(r: &HealthRegistry, t: &RouteTable, n: usize) {
        let g = &t.groups()[0];
        let m = g.members(crate::routing::Addresses::none());
        for port in 1..=4 {
            for _ in 0..n {
                r.report(g, &m, addr(port), Attempt::Failure);
            }
        }
    }

    fn available(r: &HealthRegistry) -> Vec<u16> {
        let v = r.view();
        (1..=4).filter(|p| v.is_available(addr(*p))).collect()
    }

    #[test]
    fn ejection_stops_at_max_ejected_percent() {
        let t = table("{ consecutive_failures: 2, max_ejected_percent: 50 }");
        let r = HealthRegistry::new(Arc::default());
        r.sync(&t, AddressBook::empty());
        assert!(!r.view().any_down());
        fail_all(&r, &t, 2);
        assert_eq!(available(&r), vec![3, 4], "two of four at 50%");
        assert!(r.view().any_down());

        let t = table("{ consecutive_failures: 2, max_ejected_percent: 10 }");
        let r = HealthRegistry::new(Arc::default());
        r.sync(&t, AddressBook::empty());
        fail_all(&r, &t, 2);
        assert_eq!(available(&r), vec![2, 3, 4], "one may always be ejected");

        let t = table("{ consecutive_failures: 2, max_ejected_percent: 0 }");
        let r = HealthRegistry::new(Arc::default());
        r.sync(&t, AddressBook::empty());
        fail_all(&r, &t, 5);
        assert_eq!(available(&r), vec![1, 2, 3, 4], "0% ejects nothing");
    }

    #[test]
    fn state_follows_the_table_and_survives_a_new_one() {
        let t = table("{ consecutive_failures: 1, max_ejected_percent: 100 }");
        let r = HealthRegistry::new(Arc::default());
        r.sync(&t, AddressBook::empty());
        let g = &t.groups()[0];
        r.report(
            g,
            &g.members(crate::routing::Addresses::none()),
            addr(1),
            Attempt::Failure,
        );
        assert_eq!(available(&r), vec![2, 3, 4]);
        let kept = r.get(addr(1)).expect("state");
        // A new table with the same targets (another compile): the state is the same.
        let t2 = table("{ consecutive_failures: 1, max_ejected_percent: 99 }");
        r.sync(&t2, AddressBook::empty());
        assert!(Arc::ptr_eq(&kept, &r.get(addr(1)).expect("state")));
        assert_eq!(available(&r), vec![2, 3, 4]);
        // Removed targets are forgotten; a check of one that ends afterwards changes nothing.
        let text = "upstreams:\n  g: { targets: [\"127.0.0.1:4\"] }\nroutes:\n  - { name: r, split: [{ upstream: g, weight: 1 }] }\n";
        let small = routes_from_text("routes.yaml", text.as_bytes().to_vec(), None)
            .unwrap_or_else(|e| panic!("{e}"))
            .table;
        r.sync(&small, AddressBook::empty());
        assert_eq!(r.len(), 1);
        assert!(!r.view().any_down(), "the down count follows removals");
        r.check_done(addr(1), &kept, super::super::target::Change::Down);
        assert!(!r.view().any_down());
    }

    #[test]
    fn the_breaker_counts_requests_in_flight() {
        let text = "upstreams:\n  g: { targets: [\"127.0.0.1:1\"], max_in_flight: 2 }\nroutes:\n  - { name: r, split: [{ upstream: g, weight: 1 }] }\n";
        let t = routes_from_text("routes.yaml", text.as_bytes().to_vec(), None)
            .unwrap_or_else(|e| panic!("{e}"))
            .table;
        let r = HealthRegistry::new(Arc::default());
        let g = &t.groups()[0];
        let a = r.enter_group(g).expect("first");
        let b = r.enter_group(g).expect("second");
        assert!(r.enter_group(g).is_none(), "third: circuit open");
        assert_eq!(
            r.group_in_flight("g"),
            2,
            "a refused request is not counted"
        );
        drop(a);
        let c = r.enter_group(g).expect("room again");
        drop((b, c));
        assert_eq!(r.group_in_flight("g"), 0);
    }
}
