//! The first lookups, before the gateway serves: every name of the table is asked once (at
//! most [`START_WAIT`] in all), so that a started or upgraded gateway serves with addresses.
//! A name that does not resolve by then has no address: a group with no other target answers
//! 503 until it does, and the service asks again every `dns.interval_ms`. Also `dyegate check
//! --resolve`: which names do not resolve now.

use super::names::DnsNames;
use super::resolver::{Answer, Resolver};
use crate::config::compile_target::parse_target;
use crate::config::model::RoutesConfig;
use crate::config::{DnsSettings, Issue};
use crate::routing::RouteTable;
use crate::routing::TargetEntry;
use crate::telemetry::DnsMetrics;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The longest the start waits for the first answers (a nameserver that does not answer
/// costs two tries of two seconds).
pub const START_WAIT: Duration = Duration::from_secs(5);

/// Asks every name `table` uses once (at most [`START_WAIT`] in all, before Pingora's services
/// and any daemonizing fork), and records the answers in `names` (see `prefetch.rs`).
pub fn resolve_at_start(
    names: &DnsNames,
    table: &RouteTable,
    settings: &DnsSettings,
    metrics: &DnsMetrics,
) {
    super::prefetch::ask_new(names, table, settings, metrics, "start");
}

/// For `dyegate check --resolve`: every `NAME:PORT` target of `model` whose name does not
/// resolve now, as an issue at the target (each name is asked once).
pub fn unresolved(model: &RoutesConfig, settings: &DnsSettings) -> Vec<Issue> {
    let mut targets = Vec::new();
    for (name, up) in &model.upstreams {
        let Some(up) = up else { continue };
        for (j, t) in up.targets.iter().enumerate() {
            if let Ok(TargetEntry::Name(n)) = parse_target(&t.addr, t.weight.0) {
                targets.push((
                    format!("upstreams.{name}.targets[{j}]"),
                    t.addr.clone(),
                    n.host,
                ));
            }
        }
    }
    let hosts: Vec<Arc<str>> = (targets.iter().map(|(_, _, h)| h.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let results = lookup_all(settings, &hosts);
    let why = |host: &Arc<str>| {
        let i = hosts.iter().position(|h| h == host)?;
        match results.get(i)? {
            Some(Ok(_)) => None,
            Some(Err(e)) => Some(e.clone()),
            None => Some(format!("no answer within {} s", START_WAIT.as_secs())),
        }
    };
    (targets.iter())
        .filter_map(|(path, text, host)| {
            let why = why(host)?;
            Some(Issue::new(
                path.clone(),
                format!("found {text:?}, whose name does not resolve ({why}), expected a name with an A or AAAA record"),
            ))
        })
        .collect()
}

/// Looks up every host at once on a runtime of its own; `None` where no answer came within
/// [`START_WAIT`]. Not from a thread that runs a tokio runtime (see `prefetch.rs`).
pub(super) fn lookup_all(
    settings: &DnsSettings,
    hosts: &[Arc<str>],
) -> Vec<Option<Result<Answer, String>>> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let why = format!("cannot start a runtime for DNS lookups: {e}");
            return hosts.iter().map(|_| Some(Err(why.clone()))).collect();
        }
    };
    runtime.block_on(async {
        let resolver = Arc::new(Resolver::new(settings));
        let tasks: Vec<_> = (hosts.iter())
            .map(|h| {
                let (resolver, h) = (resolver.clone(), h.clone());
                tokio::spawn(async move {
                    tokio::time::timeout(START_WAIT, resolver.lookup(&h))
                        .await
                        .ok()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.ok().flatten());
        }
        out
    })
}
