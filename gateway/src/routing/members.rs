//! The targets a request picks from: a group's fixed addresses, or (for a group with DNS
//! names) the addresses its entries stand for right now. Each set has its own weighted
//! round-robin and one prepared Pingora peer per target; an attempt only clones the peer.

use super::health::TargetHealth;
use super::transport::Transport;
use dyegate_plugins::SmoothWrr;
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::Arc;

/// One address requests go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub weight: u32,
    /// The DNS name the address was resolved from (a `NAME:PORT` entry), without the port;
    /// `None` for an `IP:PORT` entry.
    pub host: Option<Arc<str>>,
}

impl Target {
    /// An `IP:PORT` target.
    pub fn at(addr: SocketAddr, weight: u32) -> Target {
        Target {
            addr,
            weight,
            host: None,
        }
    }
}

/// A set of targets with its round-robin and prepared peers (same order as the targets).
#[derive(Debug)]
pub struct Members {
    targets: Vec<Target>,
    peers: Vec<HttpPeer>,
    /// `None` when no target has a positive weight (a name that has not resolved yet).
    wrr: Option<SmoothWrr>,
}

impl Members {
    /// The set of `targets`, each with the peer `transport` prepares for it.
    pub fn new(targets: Vec<Target>, transport: &Transport) -> Members {
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        Members {
            peers: targets.iter().map(|t| transport.peer_for(t)).collect(),
            wrr: SmoothWrr::new(&weights),
            targets,
        }
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The prepared peers, one per target in order.
    pub fn peers(&self) -> &[HttpPeer] {
        &self.peers
    }

    /// Whether no target may ever be picked (none at all, or none with a positive weight).
    pub fn is_empty(&self) -> bool {
        self.wrr.is_none()
    }

    /// The prepared peer of `target`, one of these targets (as [`Self::pick`] returns them):
    /// found by identity, sets are small.
    pub fn peer_of(&self, target: &Target) -> Option<&HttpPeer> {
        let i = self.targets.iter().position(|t| std::ptr::eq(t, target))?;
        self.peers.get(i)
    }

    /// The next target by weighted round-robin.
    pub fn next_target(&self) -> Option<&Target> {
        self.targets.get(self.wrr.as_ref()?.next())
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

    /// The first positive-weight target in order for which `ok` holds (when the bounded
    /// round-robin walk of a very skewed set found none).
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

    /// Whether any target may be picked.
    pub fn has_available(&self, health: &impl TargetHealth) -> bool {
        !self.is_empty()
            && (!health.any_down()
                || (self.targets.iter()).any(|t| t.weight > 0 && health.is_available(t.addr)))
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
    pub(super) fn inherit_position(&self, old: &Members) {
        if let (Some(new), Some(old_wrr)) = (&self.wrr, &old.wrr) {
            if self.targets == old.targets {
                new.resume_at(old_wrr.position());
            }
        }
    }
}
