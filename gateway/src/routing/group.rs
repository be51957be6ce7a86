//! An upstream group: interchangeable targets picked by weighted round-robin.

use dyegate_plugins::SmoothWrr;
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
    wrr: SmoothWrr,
}

impl Group {
    /// `None` when no target has a positive weight.
    pub fn new(name: &str, targets: Vec<Target>) -> Option<Group> {
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        Some(Group {
            name: name.into(),
            wrr: SmoothWrr::new(&weights)?,
            targets,
        })
    }

    /// The next target by weighted round-robin.
    pub fn next_target(&self) -> Option<&Target> {
        self.targets.get(self.wrr.next())
    }

    /// The target `offset` places after `first` among targets with a positive weight (used to
    /// try the others when a connection fails).
    pub fn alternative(&self, first: SocketAddr, offset: usize) -> Option<&Target> {
        let live: Vec<&Target> = self.targets.iter().filter(|t| t.weight > 0).collect();
        let at = live.iter().position(|t| t.addr == first)?;
        live.get((at + offset) % live.len()).copied()
    }

    /// Continues the round-robin where `old` was, when it has the same targets (a reload
    /// must not restart the cycle: that skews shares when reloads are frequent).
    pub fn inherit_position(&self, old: &Group) {
        if self.targets == old.targets {
            self.wrr.resume_at(old.wrr.position());
        }
    }

    /// Targets that can be picked.
    pub fn live_targets(&self) -> usize {
        self.targets.iter().filter(|t| t.weight > 0).count()
    }
}
