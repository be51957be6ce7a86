//! A candidate: a new version of the routing table as a source produced it, compiled and ready
//! to commit, with what it carries over from the running version. Sources only build these;
//! [`commit`](super::Reloader::commit) applies them, whatever their origin.

use super::history::Compiled;
use crate::config::incremental::Reuse;
use crate::config::model::RoutesConfig;
use crate::config::{LoadedRoutes, Overrides, Timings};
use crate::routing::{Carried, RouteTable};
use std::sync::Arc;
use std::time::Instant;

pub struct Candidate {
    pub table: Arc<RouteTable>,
    /// The source text as written (kept in history); `sha256` covers it and `overrides`.
    pub text: Arc<str>,
    pub sha256: String,
    /// The text decoded, as written.
    pub model: Arc<RoutesConfig>,
    /// The weights set over `model` when `table` was compiled (rollout steps).
    pub overrides: Overrides,
    /// What the next version can reuse of this one.
    pub reuse: Option<Reuse>,
    /// The routes and groups that are the running table's own (by index in it).
    pub carried: Carried,
    /// Whether split and round-robin positions continue from the running table (a table compiled
    /// now); a kept table applied again continues its own.
    pub continue_positions: bool,
    /// When the source started building it (parse-to-swap time is measured from here).
    pub started: Instant,
    pub timings: Option<Timings>,
    /// What a rollout says of this version, for its audit record.
    pub note: Option<serde_json::Value>,
    /// The number its source gives it (an etcd revision); `None`: the reloader names it.
    pub revision: Option<u64>,
    /// What the source found made this version, when it is not the trigger it was asked for
    /// (an etcd revision that is a fleet rollout's step: trigger `rollout`).
    pub trigger: Option<super::Trigger>,
}

impl Candidate {
    /// A table just compiled (routes file, etcd revision, rollout step); `sha256` is of its
    /// text and overrides.
    pub fn compiled(loaded: LoadedRoutes, started: Instant) -> Candidate {
        Candidate {
            sha256: loaded.overrides.sha256_with(loaded.text.as_bytes()),
            table: loaded.table,
            text: loaded.text,
            model: loaded.model,
            overrides: loaded.overrides,
            reuse: loaded.reuse,
            carried: loaded.carried,
            continue_positions: true,
            started,
            timings: Some(loaded.timings),
            note: None,
            revision: None,
            trigger: None,
        }
    }

    /// A kept version's table, compiled by this process, applied again as it is (rollback):
    /// nothing is read, parsed or compiled.
    pub fn kept(
        compiled: Compiled,
        running: &RouteTable,
        text: Arc<str>,
        overrides: Overrides,
        sha256: String,
        started: Instant,
    ) -> Candidate {
        let Compiled { table, model } = compiled;
        Candidate {
            carried: Carried::by_identity(&table, running),
            reuse: Reuse::of(text.clone(), model.clone(), table.clone()),
            table,
            text,
            sha256,
            model,
            overrides,
            continue_positions: false,
            started,
            timings: None,
            note: None,
            revision: None,
            trigger: None,
        }
    }
}
