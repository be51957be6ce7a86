//! A candidate: a new version of the routing table as a trigger produced it, compiled and ready
//! to commit, with what it carries over from the running version. Triggers only build these;
//! [`commit`](super::Reloader::commit) applies them, whatever their origin.

use crate::config::incremental::Reuse;
use crate::config::model::RoutesConfig;
use crate::config::{LoadedRoutes, Timings};
use crate::routing::{Carried, RouteTable};
use std::sync::Arc;
use std::time::Instant;

pub struct Candidate {
    pub table: Arc<RouteTable>,
    /// The source text (kept in history) and its sha256.
    pub text: Arc<str>,
    pub sha256: String,
    /// The decoded model and what the next version can reuse of it. `None` for a kept table
    /// applied again: commit decodes its text after the swap, for the diff and the next reload.
    pub decoded: Option<(Arc<RoutesConfig>, Option<Reuse>)>,
    /// The routes and groups that are the running table's own (by index in it).
    pub carried: Carried,
    /// Whether split and round-robin positions continue from the running table (a table compiled
    /// now); a kept table applied again continues its own.
    pub continue_positions: bool,
    /// When the trigger started building it (parse-to-swap time is measured from here).
    pub started: Instant,
    pub timings: Option<Timings>,
    /// What a rollout says of this version, for its audit record.
    pub note: Option<serde_json::Value>,
}

impl Candidate {
    /// A table just compiled from text (routes file, etcd revision, rollout step).
    pub fn compiled(loaded: LoadedRoutes, sha256: String, started: Instant) -> Candidate {
        Candidate {
            table: loaded.table,
            text: loaded.text,
            sha256,
            decoded: Some((loaded.model, loaded.reuse)),
            carried: loaded.carried,
            continue_positions: true,
            started,
            timings: Some(loaded.timings),
            note: None,
        }
    }

    /// A kept version's table, still compiled, applied again as it is (rollback).
    pub fn kept(
        table: Arc<RouteTable>,
        running: &RouteTable,
        text: Arc<str>,
        sha256: String,
        started: Instant,
    ) -> Candidate {
        Candidate {
            carried: Carried::by_identity(&table, running),
            table,
            text,
            sha256,
            decoded: None,
            continue_positions: false,
            started,
            timings: None,
            note: None,
        }
    }
}
