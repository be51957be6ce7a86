//! The fleet commands, run by the CLI against the etcd of `source.etcd` in gateway.yaml:
//! `dyegate push`, `pull`, `diff` with an `etcd:` side, and `rollback --fleet`. Each prints
//! what it did and returns an error message to print and exit 1 with.

use super::layout::{self, Assembled, EmptyTable, Entry};
use super::store::{self, Expect, StoreError, Table};
use crate::config::diff::{diff, Diff};
use crate::config::model::RoutesConfig;
use crate::config::table::compile_rollout::plans;
use crate::config::{load_routes, EtcdSettings, Gateway};
use etcd_client::Client;
use std::path::Path;
use std::sync::Arc;

/// A connection to the fleet's etcd, with the runtime the CLI drives it with.
pub struct Fleet {
    settings: EtcdSettings,
    runtime: tokio::runtime::Runtime,
    client: Client,
}

/// The etcd settings of gateway.yaml, or why there are none.
pub fn settings(config: Option<&Path>) -> Result<EtcdSettings, String> {
    let gw = Gateway::load(config).map_err(|e| e.to_string())?;
    let name = config.map_or_else(
        || "the built-in defaults".into(),
        |p| p.display().to_string(),
    );
    gw.etcd.ok_or_else(|| {
        format!("{name} has no `source: {{ etcd: ... }}`: there is no fleet table to use")
    })
}

impl Fleet {
    pub fn connect(settings: EtcdSettings) -> Result<Fleet, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let client = runtime
            .block_on(store::connect(&settings))
            .map_err(|e| e.to_string())?;
        Ok(Fleet {
            settings,
            runtime,
            client,
        })
    }

    fn prefix(&self) -> &str {
        &self.settings.prefix
    }

    /// The fleet's table at `revision` (`None`: now).
    pub fn read(&mut self, revision: Option<u64>) -> Result<Option<Table>, String> {
        let prefix = self.settings.prefix.clone();
        self.runtime
            .block_on(store::read(&mut self.client, &prefix, revision))
            .map_err(|e| match (e, revision) {
                (StoreError::Compacted(_), Some(r)) => format!(
                    "revision {r} is compacted away in etcd; a gateway's own history may still have it (dyegate versions)"
                ),
                (e, _) => e.to_string(),
            })
    }

    /// The fleet's table at `revision` assembled as routes.yaml text, or why not.
    pub fn text(&mut self, revision: Option<u64>) -> Result<(Table, Assembled), String> {
        let table = self.read(revision)?.ok_or_else(|| match revision {
            Some(r) => format!("etcd had no table under {} at revision {r}", self.prefix()),
            None => format!("etcd has no table under {} yet", self.prefix()),
        })?;
        let assembled = table.assemble(self.prefix()).map_err(|e| e.to_string())?;
        Ok((table, assembled))
    }

    /// Writes `entries` as the fleet's table, with `current`'s mark `empty`, if it is still
    /// `current` (compare-and-swap); returns the new revision.
    fn write(
        &mut self,
        entries: &[Entry],
        empty: EmptyTable,
        current: Option<&Table>,
    ) -> Result<u64, String> {
        let expect = current.map_or_else(Expect::default, |t| Expect {
            current_mod: t.current_mod,
            generation: Some(t.generation.clone()),
            read_revision: t.read_revision,
        });
        let prefix = self.settings.prefix.clone();
        self.runtime
            .block_on(store::write(
                &mut self.client,
                &prefix,
                entries,
                empty,
                &expect,
            ))
            .map_err(|e| e.to_string())
    }
}

impl Fleet {
    /// Removes the rollout keys of `routes` (their rollouts ended with the table just written):
    /// what is left is harmless (a step of another plan is never applied), so a failure is only
    /// reported.
    fn forget_rollouts(&mut self, routes: &[String]) {
        let prefix = self.settings.prefix.clone();
        for route in routes {
            let forgotten = self
                .runtime
                .block_on(crate::rollout::fleet::store::forget_route(
                    &mut self.client,
                    &prefix,
                    route,
                ));
            match forgotten {
                Ok(0) => {}
                Ok(_) => println!("rollout of {route}: its split or rollout changed (or the route is gone): the fleet's rollout of it ended, a new one starts from this table"),
                Err(e) => eprintln!("note: the rollout keys of {route} were not removed ({e}); they are not applied to the new table"),
            }
        }
    }
}

/// The decoded model of a fleet table, for diffs (an invalid one diffs as empty, said so).
fn model_of(prefix: &str, table: &Table) -> Arc<RoutesConfig> {
    match super::etcd::compile(prefix, table, None) {
        Ok(l) => l.model,
        Err(e) => {
            eprintln!(
                "note: the fleet's table at revision {} is invalid:\n{e}",
                table.revision
            );
            Arc::new(RoutesConfig::default())
        }
    }
}

fn print_diff(d: &Diff) {
    for line in &d.lines {
        println!("  {line}");
    }
    println!("{}", d.summary());
}

/// Whether `current` names a table marked `empty` and counted as `keys` keys, as a push of
/// it would write (a value that does not parse marks nothing).
fn marked(prefix: &str, table: &Table, empty: EmptyTable, keys: usize) -> bool {
    table
        .current(prefix)
        .is_ok_and(|c| c.empty == empty && c.keys == Some(keys))
}

/// The mark a pushed table gets: `allow-empty` only for a table with no routes pushed with
/// `--allow-empty`. A table with routes never carries it, so that emptying it later behind
/// dyegate's back is still refused by the gateways.
fn empty_mark(file: &Path, routes: usize, allow_empty: bool) -> Result<EmptyTable, String> {
    match (routes, allow_empty) {
        (0, true) => Ok(EmptyTable::Allowed),
        (0, false) => Err(format!(
            "{}: found a table with no routes, expected at least one route: every gateway of the fleet would answer 404 to every request (`dyegate push --allow-empty` pushes it if that is what you want); nothing was written",
            file.display()
        )),
        _ => Ok(EmptyTable::Refused),
    }
}

/// The routes whose fleet rollout a new table ends: their `split` or `rollout` changed (a new
/// plan id) or they are gone. Their keys under `PREFIX/rollouts/` are removed with the push,
/// so that a route put back later starts its rollout again.
fn ended_rollouts(before: &RoutesConfig, after: &RoutesConfig) -> Vec<String> {
    let after = plans(after);
    (plans(before).into_iter())
        .filter(|(route, p)| {
            after
                .get(route)
                .is_none_or(|a| a.fingerprint != p.fingerprint)
        })
        .map(|(route, _)| route)
        .collect()
}

/// `dyegate push FILE [--allow-empty]`: validate with `check`'s code (a table with no routes
/// only with `allow_empty`), show the diff against the fleet's revision, write it if the
/// fleet's table has not changed since it was read.
pub fn push(config: Option<&Path>, file: &Path, allow_empty: bool) -> Result<(), String> {
    let loaded = load_routes(file, crate::config::bounds::DEFAULT_MAX_FILE_BYTES)
        .map_err(|e| format!("{e}\nnothing was written"))?;
    let empty = empty_mark(file, loaded.routes, allow_empty)?;
    let entries = layout::entries_of(&loaded.text)
        .map_err(|e| format!("{}: {e}; nothing was written", file.display()))?;
    let mut fleet = Fleet::connect(settings(config)?)?;
    let current = fleet.read(None)?;
    let prefix = fleet.prefix().to_string();
    let mut ended = Vec::new();
    if let Some(table) = &current {
        ended = ended_rollouts(&model_of(&prefix, table), &loaded.model);
        let mut new_kvs: Vec<(String, String)> = entries
            .iter()
            .map(|e| (format!("{}{}", table.dir(&prefix), e.key), e.value.clone()))
            .collect();
        new_kvs.sort();
        if table.kvs == new_kvs && marked(&prefix, table, empty, entries.len()) {
            println!("no changes: the fleet is at revision {}", table.revision);
            return Ok(());
        }
        println!("diff against the fleet's revision {}:", table.revision);
        print_diff(&diff(&model_of(&prefix, table), &loaded.model));
    } else {
        println!(
            "no table under {prefix} yet: {} routes, {} upstreams",
            loaded.routes, loaded.upstreams
        );
    }
    let revision = fleet.write(&entries, empty, current.as_ref())?;
    println!("pushed {}: revision {revision}", file.display());
    fleet.forget_rollouts(&ended);
    Ok(())
}

/// `dyegate pull [-o FILE]`: the fleet's table as one routes.yaml.
pub fn pull(config: Option<&Path>, out: Option<&Path>) -> Result<(), String> {
    let mut fleet = Fleet::connect(settings(config)?)?;
    let (table, Assembled { text, .. }) = fleet.text(None)?;
    match out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("revision {} written to {}", table.revision, path.display());
        }
        None => {
            print!("{text}");
            eprintln!("revision {}", table.revision);
        }
    }
    Ok(())
}

/// A side of `dyegate diff`: `etcd:` (the fleet now), `etcd:REV`, or a file.
pub fn etcd_side(arg: &str) -> Option<Result<Option<u64>, String>> {
    let rest = arg.strip_prefix("etcd:")?;
    Some(match rest {
        "" => Ok(None),
        r => r
            .parse()
            .map(Some)
            .map_err(|_| format!("{arg}: expected etcd: (the fleet's table now) or etcd:REVISION")),
    })
}

/// The decoded model of one `dyegate diff` side.
pub fn side_model(config: Option<&Path>, arg: &str) -> Result<Arc<RoutesConfig>, String> {
    match etcd_side(arg) {
        Some(revision) => {
            let revision = revision?;
            let mut fleet = Fleet::connect(settings(config)?)?;
            let (table, _) = fleet.text(revision)?;
            super::etcd::compile(fleet.prefix(), &table, None)
                .map(|l| l.model)
                .map_err(|e| e.to_string())
        }
        None => load_routes(
            Path::new(arg),
            crate::config::bounds::DEFAULT_MAX_FILE_BYTES,
        )
        .map(|l| l.model)
        .map_err(|e| e.to_string()),
    }
}

/// `dyegate rollback --fleet --to REV`: the table of revision REV written back as a new
/// revision (every gateway follows), with its `allow-empty` mark; a table with no routes and
/// no mark (what gateways refused) is not written back.
pub fn rollback(config: Option<&Path>, to: u64) -> Result<(), String> {
    let mut fleet = Fleet::connect(settings(config)?)?;
    let prefix = fleet.prefix().to_string();
    let (old, assembled) = fleet.text(Some(to))?;
    let empty = (old.current(&prefix).map_err(|e| e.to_string())?).empty;
    old.admit(&prefix, &assembled, None).map_err(|e| {
        format!(
            "{e}\nthe table of revision {to} is not one the gateways serve; nothing was written"
        )
    })?;
    let current = fleet.read(None)?;
    let old_dir = old.dir(&prefix);
    let entries: Vec<Entry> = (old.kvs.iter())
        .map(|(k, v)| Entry {
            key: k.strip_prefix(&old_dir).unwrap_or(k).to_string(),
            value: v.clone(),
        })
        .collect();
    if let Some(table) = &current {
        let dir = table.dir(&prefix);
        let same = table.kvs.len() == entries.len()
            && (table.kvs.iter().zip(&entries))
                .all(|((k, v), e)| k.strip_prefix(&dir) == Some(e.key.as_str()) && *v == e.value)
            && marked(&prefix, table, empty, entries.len());
        if same {
            println!(
                "no changes: the fleet's table (revision {}) is already that of revision {to}",
                table.revision
            );
            return Ok(());
        }
        println!(
            "diff from the fleet's revision {} to revision {to}:",
            table.revision
        );
        print_diff(&diff(&model_of(&prefix, table), &model_of(&prefix, &old)));
    }
    let revision = fleet.write(&entries, empty, current.as_ref())?;
    println!("fleet rolled back to the table of revision {to}: revision {revision}");
    if let Some(table) = &current {
        let ended = ended_rollouts(&model_of(&prefix, table), &model_of(&prefix, &old));
        fleet.forget_rollouts(&ended);
    }
    Ok(())
}
