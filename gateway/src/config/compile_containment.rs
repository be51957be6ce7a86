//! The containment sections of routes.yaml to their typed form (`routing::policy`). Values were
//! range-checked when decoded (`containment.rs`); what is left is defaults and cross-field checks.

use super::containment::TimeoutsConfig;
use crate::routing::Timeouts;
use std::time::Duration;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `routes[i].timeouts`.
pub fn timeouts(cfg: &TimeoutsConfig) -> Timeouts {
    let d = Timeouts::default();
    Timeouts {
        connect: cfg.connect_ms.map(|m| ms(m.0)),
        read: cfg.read_ms.map_or(d.read, |m| ms(m.0)),
        write: cfg.write_ms.map_or(d.write, |m| ms(m.0)),
        total: cfg.total_ms.map(|m| ms(m.0)),
    }
}
