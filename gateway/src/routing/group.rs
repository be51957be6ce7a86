//! An upstream group: interchangeable targets picked by weighted round-robin among those the
//! health view says may be picked.

use super::health::TargetHealth;
use super::policy::GroupPolicy;
use super::transport::Transport;
use dyegate_plugins::SmoothWrr;
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::Arc;

/// Index of a group in its [`super::RouteTable`].
pub type GroupId = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub weight: u32,
}

#[derive(Debug)]
pub struct Group {
    pub name: Arc<str>,
    pub targets: Vec<Target>,
    /// Health checks, outlier ejection, circuit breaker.
    pub policy: GroupPolicy,
    /// Protocol, TLS and the prepared peer of each target.
    pub transport: Transport,
    wrr: SmoothWrr,
}

impl Group {
    /// `None` when no target has a positive weight.
    pub fn new(name: &str, targets: Vec<Target>) -> Option<Group> {
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        Some(Group {
            name: name.into(),
            wrr: SmoothWrr::new(&weights)?,
            transport: Transport::plain(targets.iter().map(|t| t.addr)),
            targets,
            policy: GroupPolicy::default(),
        })
    }

    /// The group with the peers the config compiler prepared (one per target, in order).
    pub fn with_transport(mut self, transport: Transport) -> Group {
        debug_assert_eq!(transport.peers().len(), self.targets.len());
        self.transport = transport;
        self
    }

    /// The prepared peer of `target`, one of this group's targets (as [`Self::pick`] returns
    /// them): found by identity, groups are small.
    pub fn peer_of(&self, target: &Target) -> Option<&HttpPeer> {
        let i = self.targets.iter().position(|t| std::ptr::eq(t, target))?;
        self.transport.peer(i)
    }

    pub fn with_policy(mut self, policy: GroupPolicy) -> Group {
        self.policy = policy;
        self
    }

    /// The next target by weighted round-robin.
    pub fn next_target(&self) -> Option<&Target> {
        self.targets.get(self.wrr.next())
    }

    /// The next target by weighted round-robin among those `health` says may be picked: the
    /// turns of the others are skipped, so the rest keep their relative weights.
    pub fn pick(&self, health: &impl TargetHealth) -> Option<&Target> {
        if !health.any_down() {
            return self.next_target();
        }
        // Each round of the smooth cycle visits every positive-weight target at least once.
        let turns = self.wrr_cycle_bound();
        (0..turns)
            .filter_map(|_| self.next_target())
            .find(|t| health.is_available(t.addr))
            .or_else(|| self.first(|t| health.is_available(t.addr)))
    }

    /// The first positive-weight target in file order for which `ok` holds (when the bounded
    /// round-robin walk of a very skewed group found none).
    fn first(&self, ok: impl Fn(&Target) -> bool) -> Option<&Target> {
        self.targets.iter().find(|t| t.weight > 0 && ok(t))
    }

    /// A target for another try: one not in `tried` that may be picked, else any that may be
    /// picked (Pingora's retry of a stale pooled connection may go to the same target), else
    /// none. Retries under the route's `retries` are made only when [`Self::has_other`].
    pub fn pick_other(&self, tried: &[SocketAddr], health: &impl TargetHealth) -> Option<&Target> {
        let untried = self.first(|t| !tried.contains(&t.addr) && health.is_available(t.addr));
        if untried.is_none() {
            return self.pick(health);
        }
        let fresh = |t: &Target| !tried.contains(&t.addr) && health.is_available(t.addr);
        (0..self.wrr_cycle_bound())
            .filter_map(|_| self.next_target())
            .find(|t| fresh(t))
            .or_else(|| self.first(fresh))
    }

    /// Whether a target not in `tried` may be picked (a retry goes to another target).
    pub fn has_other(&self, tried: &[SocketAddr], health: &impl TargetHealth) -> bool {
        self.first(|t| !tried.contains(&t.addr) && health.is_available(t.addr))
            .is_some()
    }

    /// Whether any target of the group may be picked.
    pub fn has_available(&self, health: &impl TargetHealth) -> bool {
        !health.any_down()
            || self
                .targets
                .iter()
                .any(|t| t.weight > 0 && health.is_available(t.addr))
    }

    /// Turns of the round-robin within which every positive-weight target comes up: the smooth
    /// WRR gives each target its turns spread over one cycle of `sum(weights)` turns; bounded so
    /// that large weights do not make a pick slow.
    fn wrr_cycle_bound(&self) -> usize {
        let sum: u64 = self.targets.iter().map(|t| u64::from(t.weight)).sum();
        (sum as usize).clamp(1, 4096)
    }

    /// Continues the round-robin where `old` was, when it has the same targets (a reload
    /// must not restart the cycle: that skews shares when reloads are frequent).
    pub fn inherit_position(&self, old: &Group) {
        if self.targets == old.targets {
            self.wrr.resume_at(old.wrr.position());
        }
    }
}
