//! What the decision may know about target health: a read-only question per target address.
//! The state itself lives outside the table (`crate::health`); the decision stays pure.

use std::net::SocketAddr;

/// A read-only view of target health, taken once per request.
pub trait TargetHealth {
    /// Whether any target at all is unhealthy or ejected; `false` lets the decision skip every
    /// per-target question (the common case).
    fn any_down(&self) -> bool;
    /// Whether `addr` may be picked: not marked unhealthy by its checks, not ejected.
    fn is_available(&self, addr: SocketAddr) -> bool;
}

/// Every target healthy (no health state at all).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllHealthy;

impl TargetHealth for AllHealthy {
    fn any_down(&self) -> bool {
        false
    }
    fn is_available(&self, _addr: SocketAddr) -> bool {
        true
    }
}
