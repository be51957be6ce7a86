//! What a rollback does to the rollouts of a gateway on its routes file (the reloader tells the
//! controller through [`Overlay::rolled_back`](crate::reload::Overlay::rolled_back)): every one
//! whose route it gave other weights is paused, holding them.

use super::controller::Controller;
use super::state::{MovedBy, Phase};
use crate::routing::RouteTable;
use log::warn;

impl Controller {
    /// What a rollback does to the rollouts: every one whose route it gave other weights is
    /// paused with the reason `rollback to vN` and holds the rolled-back weights (share 0 when
    /// the version has no such split), across reloads, restarts and upgrades, until a control
    /// moves it or an edit of the route's `split` or `rollout` starts it again.
    pub(super) fn hold_rollback(
        &self,
        to: crate::reload::VersionId,
        before: &RouteTable,
        after: &RouteTable,
    ) {
        let mut inner = self.lock();
        let routes: Vec<String> = inner.states.keys().cloned().collect();
        let mut touched = Vec::new();
        for route in routes {
            let Some(plan) = inner.plans.get(&route).cloned() else {
                continue;
            };
            let now = weights_in(after, &route);
            if now == weights_in(before, &route) {
                continue;
            }
            let held = match now {
                Some(w) if w.len() == plan.base.len() => w,
                _ => plan.weights(0),
            };
            inner.generation += 1;
            let generation = inner.generation;
            let Some(s) = inner.states.get_mut(&route) else {
                continue;
            };
            let why = format!("rollback to v{to}");
            warn!(
                "rollout {route}: paused at step {} ({why}): the canary keeps {:.1}% until a resume or an edit of the route's split or rollout",
                s.step,
                plan.share_of(&held)
            );
            s.generation = generation;
            s.moved(Phase::Paused, MovedBy::Rollback, Some(why));
            s.held = Some(held);
            s.shadow = false; // the rolled-back version's mirrors are what they are
            touched.push(route);
        }
        if touched.is_empty() {
            return;
        }
        for route in &touched {
            self.show(&inner, route, true);
        }
        self.save(&mut inner);
    }
}

/// The weights of `route`'s split in `table`.
fn weights_in(table: &crate::routing::RouteTable, route: &str) -> Option<Vec<u32>> {
    let r = table.routes().iter().find(|r| *r.name == *route)?;
    Some(r.split.weights.clone())
}
