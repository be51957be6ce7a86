//! The background service that runs active health checks: one Pingora background service for
//! all targets, never on the request path, never more than one check in flight per target. It
//! follows the routing table and the addresses of its DNS names: checks of new targets start
//! (the target healthy until they say otherwise), checks of removed targets stop. It also ends
//! ejections that ran out and keeps `dyegate_target_healthy` current.

use super::probe::probe;
use super::registry::HealthRegistry;
use super::target::Change;
use crate::routing::{ActiveTable, SharedTable};
use crate::routing::{AddressBook, Addresses, HealthCheck, RouteTable, TargetHealth};
use crate::telemetry::ContainmentMetrics;
use crate::telemetry::TableMetrics;
use async_trait::async_trait;
use log::{info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the service looks for due checks, run-out ejections and table changes.
const TICK: Duration = Duration::from_millis(50);
/// The table's targets are followed at least this often even when it was not swapped (a
/// request of an older table may have registered a target since removed).
const RESYNC: Duration = Duration::from_secs(1);

/// A target's checks: the first group (in table order) that checks this address decides how.
struct Planned {
    group: Arc<str>,
    check: Arc<HealthCheck>,
    /// `NAME:PORT` of a target a DNS name gave: the `Host` of its HTTP checks by default.
    host: Option<Arc<str>>,
    next_due: Instant,
}

pub struct HealthService {
    table: SharedTable<TableMetrics>,
    registry: Arc<HealthRegistry>,
    metrics: Arc<ContainmentMetrics>,
    book: Arc<AddressBook>,
}

impl HealthService {
    pub fn new(
        table: SharedTable<TableMetrics>,
        registry: Arc<HealthRegistry>,
        metrics: Arc<ContainmentMetrics>,
    ) -> Self {
        HealthService {
            table,
            registry,
            metrics,
            book: Arc::default(),
        }
    }

    /// The addresses of the table's DNS names (their targets are checked too).
    pub fn with_addresses(mut self, book: Arc<AddressBook>) -> Self {
        self.book = book;
        self
    }

    /// The checks the table asks for, keeping the due times of targets checked already (a
    /// reload does not reset a target's rhythm). The first checks of a group's new targets are
    /// spread over one interval: a thousand targets added at once must not be checked in one
    /// burst every interval (seen here: 14% of 1,000 targets failing their checks that way).
    fn plan(&self, table: &RouteTable, old: &mut HashMap<SocketAddr, Planned>) {
        let now = Instant::now();
        let addresses = self.book.load_full();
        let mut plan = HashMap::new();
        for g in table.groups() {
            let Some(check) = &g.policy.health else {
                continue;
            };
            let check = Arc::new(check.clone());
            let members = g.members(&addresses);
            let n = members.targets().len().max(1) as u32;
            for (i, t) in members.targets().iter().enumerate() {
                if plan.contains_key(&t.addr) {
                    continue;
                }
                let first = now + check.interval * i as u32 / n;
                let next_due = match old.get(&t.addr) {
                    Some(p) if *p.check == *check => p.next_due,
                    _ => first,
                };
                plan.insert(
                    t.addr,
                    Planned {
                        group: g.name.clone(),
                        check: check.clone(),
                        host: (t.host.as_ref()).map(|h| format!("{h}:{}", t.addr.port()).into()),
                        next_due,
                    },
                );
            }
        }
        *old = plan;
    }

    /// Starts the checks that are due and not already running.
    fn run_due(&self, plan: &mut HashMap<SocketAddr, Planned>) {
        let now = Instant::now();
        for (addr, p) in plan.iter_mut() {
            if now < p.next_due {
                continue;
            }
            p.next_due = now + p.check.interval;
            let state = self.registry.target(*addr);
            if !state.begin_check() {
                continue; // the previous check still runs (it is bounded by its timeout)
            }
            let (addr, check, group) = (*addr, p.check.clone(), p.group.clone());
            let host = p.host.clone();
            let (registry, metrics) = (self.registry.clone(), self.metrics.clone());
            tokio::spawn(async move {
                let ok = probe(addr, &check.kind, check.timeout, host.as_deref()).await;
                let change = state.end_check(ok, &check, registry.now_ms());
                registry.check_done(addr, &state, change);
                metrics.health_check(&group, addr, ok);
                match change {
                    Change::Down => warn!(
                        "target {addr} of upstream group {group} is unhealthy: {} checks failed",
                        check.unhealthy_after
                    ),
                    Change::Up => info!("target {addr} of upstream group {group} is healthy again"),
                    Change::None => {}
                }
            });
        }
    }

    /// Sets `dyegate_target_healthy` where it changed since the last tick.
    fn publish(&self, table: &RouteTable, shown: &mut HashMap<(Arc<str>, SocketAddr), bool>) {
        let view = self.registry.view();
        let addresses = self.book.load_full();
        for g in table.groups() {
            for t in g.members(&addresses).targets() {
                let up = view.is_available(t.addr);
                let key = (g.name.clone(), t.addr);
                if shown.get(&key) != Some(&up) {
                    self.metrics.set_healthy(&g.name, t.addr, up);
                    shown.insert(key, up);
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for HealthService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut plan = HashMap::new();
        let mut shown = HashMap::new();
        let mut synced: Option<(Arc<ActiveTable<TableMetrics>>, Arc<Addresses>, Instant)> = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            let active = self.table.load_full();
            let book = self.book.load_full();
            // A new table, or new addresses of its DNS names: the targets changed.
            let swapped = synced.as_ref().is_none_or(|(t, b, _)| {
                !Arc::ptr_eq(&t.table, &active.table) || !Arc::ptr_eq(b, &book)
            });
            if swapped
                || synced
                    .as_ref()
                    .is_some_and(|(_, _, at)| at.elapsed() >= RESYNC)
            {
                self.registry.sync(&active.table, &self.book);
                if swapped {
                    self.plan(&active.table, &mut plan);
                    // Series of removed targets are gone: show every target again.
                    shown.clear();
                }
                synced = Some((active.clone(), book, Instant::now()));
            }
            self.registry.sweep();
            self.run_due(&mut plan);
            self.publish(&active.table, &mut shown);
        }
    }
}
