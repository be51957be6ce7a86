//! The background service that keeps the DNS names of the routing table resolved: it follows
//! the table (a name new to it is asked at once, one it no longer has is forgotten), asks each
//! name when it is due (never two lookups of one name at once), and applies the answers to the
//! address book, logging and counting every change and failure. It never touches the table:
//! new addresses reach requests through the book, without a new routing version.

use super::names::{describe_change, DnsNames, Recorded, Times};
use super::resolver::{Answer, Resolver};
use crate::config::DnsSettings;
use crate::routing::{RouteTable, SharedTable};
use crate::telemetry::{DnsMetrics, TableMetrics};
use async_trait::async_trait;
use log::{info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the service looks for due names and a new table.
const TICK: Duration = Duration::from_millis(50);

/// Per name, the upstream groups whose entries use it (for logs and metrics).
type UsedBy = BTreeMap<Arc<str>, Vec<Arc<str>>>;

pub struct DnsService {
    table: SharedTable<TableMetrics>,
    names: Arc<DnsNames>,
    settings: DnsSettings,
    metrics: Arc<DnsMetrics>,
}

impl DnsService {
    pub fn new(
        table: SharedTable<TableMetrics>,
        names: Arc<DnsNames>,
        settings: DnsSettings,
        metrics: Arc<DnsMetrics>,
    ) -> Self {
        DnsService {
            table,
            names,
            settings,
            metrics,
        }
    }

    /// Follows `table`'s names; returns which groups use each.
    fn follow(&self, table: &RouteTable) -> UsedBy {
        let used = used_by(table);
        let hosts: BTreeSet<Arc<str>> = used.keys().cloned().collect();
        self.names.follow(&hosts, Instant::now());
        // A name the table does not use but `names` kept is pending: a reload asked it for
        // the table it is about to swap in (`prefetch.rs`); its series stay too.
        self.metrics.follow(
            (used.iter()).flat_map(|(h, gs)| gs.iter().map(move |g| (g.as_ref(), h.as_ref()))),
            |h| !hosts.contains(h) && self.names.get(h).is_some(),
        );
        for (h, gs) in &used {
            let n = self.names.get(h).map_or(0, |v| v.addrs.len());
            for g in gs {
                self.metrics.set_addresses(g, h, n);
            }
        }
        used
    }

    /// Applies one lookup's result: the book, the log, the counters.
    fn apply(&self, host: &Arc<str>, result: Result<Answer, String>, used: &UsedBy) {
        let recorded = self.names.record(host, result, Times::now());
        let groups = used.get(host).map(Vec::as_slice).unwrap_or_default();
        report(host, groups, &recorded, &self.names, &self.metrics);
    }
}

/// Logs and counts what a lookup did (also used by the first lookups at start).
pub(super) fn report(
    host: &str,
    groups: &[Arc<str>],
    recorded: &Recorded,
    names: &DnsNames,
    metrics: &DnsMetrics,
) {
    let group_list = groups
        .iter()
        .map(|g| g.as_ref())
        .collect::<Vec<_>>()
        .join(", ");
    match recorded {
        Recorded::Changed {
            change,
            first,
            recovered,
        } => {
            let now = names.get(host).map(|v| v.addrs).unwrap_or_default();
            if *recovered > 0 {
                info!("DNS name {host} resolves again after {recovered} failed lookups");
            }
            if *first {
                info!(
                    "DNS name {host} (upstream group {group_list}) resolves to {}",
                    super::diff::list(&now)
                );
            } else {
                info!("{}", describe_change(host, &group_list, change, &now));
            }
            for g in groups {
                if !first {
                    metrics.changed(g, host);
                }
                metrics.set_addresses(g, host, now.len());
            }
        }
        Recorded::Same { recovered } => {
            if *recovered > 0 {
                info!(
                    "DNS name {host} resolves again after {recovered} failed lookups (same addresses)"
                );
            }
        }
        Recorded::Failed { log, error } => {
            for g in groups {
                metrics.failed(g, host);
            }
            if let Some(line) = log {
                let kept = names.get(host).map(|v| v.addrs).unwrap_or_default();
                let kept = match kept.is_empty() {
                    true => "it has no address yet".to_string(),
                    false => format!("keeping {}", super::diff::list(&kept)),
                };
                let row = match line.unlogged {
                    0 => format!("{} in a row", line.in_a_row),
                    n => format!(
                        "{} in a row, {n} not logged since the last line",
                        line.in_a_row
                    ),
                };
                warn!("DNS lookup of {host} (upstream group {group_list}) failed: {error}; {kept} ({row})");
            }
        }
        Recorded::Forgotten => {}
    }
}

/// The names of `table`'s groups, each with the groups that use it.
pub fn used_by(table: &RouteTable) -> UsedBy {
    let mut used: UsedBy = BTreeMap::new();
    for g in table.groups() {
        for n in g.names() {
            let groups = used.entry(n.host.clone()).or_default();
            if !groups.contains(&g.name) {
                groups.push(g.name.clone());
            }
        }
    }
    used
}

#[async_trait]
impl BackgroundService for DnsService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let resolver = Arc::new(Resolver::new(&self.settings));
        let (tx, mut rx) = mpsc::unbounded_channel::<(Arc<str>, Result<Answer, String>)>();
        let mut followed: Option<Arc<RouteTable>> = None;
        let mut used = UsedBy::new();
        loop {
            let active = self.table.load_full();
            if followed
                .as_ref()
                .is_none_or(|t| !Arc::ptr_eq(t, &active.table))
            {
                used = self.follow(&active.table);
                followed = Some(active.table.clone());
            }
            for host in self.names.take_due(Instant::now()) {
                let (resolver, tx) = (resolver.clone(), tx.clone());
                tokio::spawn(async move {
                    let result = resolver.lookup(&host).await;
                    let _ = tx.send((host, result));
                });
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                Some((host, result)) = rx.recv() => self.apply(&host, result, &used),
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }
}
