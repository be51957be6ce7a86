//! A name is asked before the first table that uses it serves: at start (every name), and on
//! every change of the table (a reload, a rollback, an etcd revision, a rollout step) that
//! brings a name the gateway does not know yet. The attempt waits for the name's first answer,
//! at most [`START_WAIT`], then commits: the first request after the reload's answer finds its
//! addresses in the book. A name that has not resolved by then is committed anyway, never
//! waited for longer: the reload says so (a warning in its answer and in the log), `/upstreams`
//! shows the failure as for any lookup, and the service asks again in the background. The
//! compile step never waits for DNS; names already known are not asked again here.

use super::names::{DnsNames, Times};
use super::service::{report, used_by};
use super::startup::{lookup_all, START_WAIT};
use crate::config::DnsSettings;
use crate::routing::RouteTable;
use crate::telemetry::DnsMetrics;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

/// What a reload is given to ask the new names of its table before the commit.
pub struct Prefetch {
    names: Arc<DnsNames>,
    settings: DnsSettings,
    metrics: Arc<DnsMetrics>,
}

impl Prefetch {
    pub fn new(names: Arc<DnsNames>, settings: DnsSettings, metrics: Arc<DnsMetrics>) -> Self {
        Prefetch {
            names,
            settings,
            metrics,
        }
    }

    /// Asks the names of `table` not known yet (blocking, at most [`START_WAIT`]); one line per
    /// name that did not resolve, for the reload's answer.
    pub fn resolve_new(&self, table: &RouteTable) -> Vec<String> {
        let started = Instant::now();
        let unresolved = ask_new(&self.names, table, &self.settings, &self.metrics, "reload");
        if unresolved.asked > 0 {
            log::info!(
                "reload: {} new DNS name(s) asked before the table serves, in {} ms",
                unresolved.asked,
                started.elapsed().as_millis()
            );
        }
        unresolved.failures
    }
}

/// What [`ask_new`] did.
pub(super) struct Asked {
    /// Names asked.
    pub asked: usize,
    /// Per name that has no address, why (one line each).
    pub failures: Vec<String>,
}

/// Asks every name of `table` that `names` does not know yet, at once, on a runtime of its own
/// (on a thread of its own, so that it runs from anywhere, a runtime's thread included), and
/// records the answers; `when` names the occasion in the log (`start`, `reload`).
pub(super) fn ask_new(
    names: &DnsNames,
    table: &RouteTable,
    settings: &DnsSettings,
    metrics: &DnsMetrics,
    when: &str,
) -> Asked {
    let used = used_by(table);
    let hosts: BTreeSet<Arc<str>> = used.keys().cloned().collect();
    let new = names.add_new(&hosts, Instant::now());
    if new.is_empty() {
        return Asked {
            asked: 0,
            failures: Vec::new(),
        };
    }
    metrics.add((new.iter()).flat_map(|h| {
        let groups = used.get(h).map(Vec::as_slice).unwrap_or_default();
        groups.iter().map(move |g| (g.as_ref(), h.as_ref()))
    }));
    let results = {
        let (settings, new) = (settings.clone(), new.clone());
        std::thread::Builder::new()
            .name("dns-prefetch".into())
            .spawn(move || lookup_all(&settings, &new))
            .map_err(|e| format!("cannot start a thread for DNS lookups: {e}"))
            .and_then(|t| {
                t.join()
                    .map_err(|_| "the DNS lookups' thread failed".to_string())
            })
    };
    let results = match results {
        Ok(r) => r,
        Err(why) => new.iter().map(|_| Some(Err(why.clone()))).collect(),
    };
    let mut failures = Vec::new();
    for (host, result) in new.iter().zip(results) {
        let groups = used.get(host).map(Vec::as_slice).unwrap_or_default();
        let group_list = (groups.iter().map(|g| g.as_ref()))
            .collect::<Vec<_>>()
            .join(", ");
        match result {
            Some(result) => {
                if let Err(e) = &result {
                    failures.push(format!(
                        "DNS name {host} (upstream group {group_list}) does not resolve ({e}): no address from it until it does; asked again in the background"
                    ));
                }
                let recorded = names.record(host, result, Times::now());
                report(host, groups, &recorded, names, metrics);
            }
            None => {
                let why = format!(
                    "DNS name {host} (upstream group {group_list}): no answer within {} s of the {when}; asked again in the background",
                    START_WAIT.as_secs()
                );
                log::warn!("{why}");
                failures.push(why);
                names.unanswered(host, Instant::now());
            }
        }
    }
    Asked {
        asked: new.len(),
        failures,
    }
}
