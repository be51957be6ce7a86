//! A decoded table as compiled with what running rollouts set over it (for diffs): the routes
//! they name carry their weights and a shadow stage's mirror, every other entry is shared.

use super::model::{RouteConfig, RoutesConfig, Weight};
use crate::routing::Overrides;
use std::sync::Arc;

/// `model` with `overrides` set over it.
pub fn over(overrides: &Overrides, model: &Arc<RoutesConfig>) -> Arc<RoutesConfig> {
    if overrides.is_empty() {
        return model.clone();
    }
    let mut m = RoutesConfig::clone(model);
    for route in m.routes.iter_mut().flatten() {
        if let Some(s) = overrides.shadow(&route.name) {
            *route = Arc::new(super::compile_mirror::with_shadow(route, s));
        }
        let Some(w) = overrides.get(&route.name) else {
            continue;
        };
        if w.len() != route.split.len() {
            continue; // refused by compile; never a version
        }
        let mut r = RouteConfig::clone(route);
        for (entry, w) in r.split.iter_mut().zip(w) {
            entry.weight = Weight(*w);
        }
        *route = Arc::new(r);
    }
    Arc::new(m)
}
