//! The sources of a new version, each only its build step of the one [`attempt`]: the routes
//! file (a save, SIGHUP, `POST /reload`), an etcd revision, a rollback to a kept version. A
//! rollout's step is in `rollout_commit.rs`.
//!
//! Every source's table gets the same weights set over it by the running rollouts (see
//! [`Overlay`](super::Overlay)), from the text decoded once; on a gateway that follows etcd,
//! the fleet's rollout steps read with the table are those weights.
//!
//! [`attempt`]: Reloader::attempt

use super::attempt::{Build, Built, Done};
use super::candidate::Candidate;
use super::history::Kept;
use super::reloader::{Reloader, Running, SourceText};
use super::report::{Caller, ReloadReport};
use super::trigger::Trigger;
use super::version_id::{self, VersionId};
use crate::config::model::RoutesConfig;
use crate::config::table::compile_rollout::{plans, Plans};
use crate::config::{recompile, routes_from_text_over, ConfigErrors, Overrides};
use crate::rollout::FleetSteps;
use crate::routing::{ActiveTable, Carried, RouteTable};
use crate::stamp::sha256_hex;
use crate::telemetry::labels::TriggerLabel;
use crate::telemetry::TableMetrics;
use std::time::Instant;

fn messages(errors: ConfigErrors) -> Vec<String> {
    errors.0.iter().map(ToString::to_string).collect()
}

/// Content read (its sha256) but invalid.
fn invalid<'a>(sha256: String, errors: Vec<String>) -> Build<'a> {
    Built::Invalid { sha256, errors }.into()
}

impl Reloader {
    /// Source: the routes file (file change, SIGHUP, admin API). Reads it and commits it, with
    /// the rollouts' weights set over it, if that changes the running version and it is valid.
    pub fn reload(&self, trigger: Trigger, caller: Caller) -> ReloadReport {
        let kind = trigger.clone();
        self.attempt(trigger, caller, |running, current| {
            self.build_file(running, current, &kind).into()
        })
    }

    fn build_file(
        &self,
        running: &Running,
        current: &ActiveTable<TableMetrics>,
        trigger: &Trigger,
    ) -> Built {
        if let Some(source) = &self.source {
            return Built::Refused(vec![format!(
                "the routing table comes from etcd ({}): change it with `dyegate push`; the routes file is not read",
                source.prefix
            )]);
        }
        let bytes = match crate::config::bounds::read(&self.routes_path, self.max_file_bytes) {
            Ok(b) => b,
            Err(e) => return Built::Refused(vec![e.to_string()]),
        };
        let started = Instant::now();
        let mut note = None;
        let mut over = |model: &RoutesConfig| {
            let (overrides, n) = self.over(&plans(model), &current.table, trigger.label());
            note = note.take().or(n);
            overrides
        };
        let text_sha256 = sha256_hex(&bytes);
        let loaded = if text_sha256 == running.text_sha256 {
            // The running text: decoded already, only what the rollouts set over it may differ.
            let overrides = over(&running.model);
            let sha256 = overrides.sha256_with(&bytes);
            if sha256 == current.sha256 {
                return Built::Same { sha256, note };
            }
            recompile(
                running.text.clone(),
                running.model.clone(),
                running.reuse.as_ref(),
                &current.table,
                &self.routes_path.display().to_string(),
                overrides,
            )
        } else {
            routes_from_text_over(
                &self.routes_path.display().to_string(),
                bytes,
                running.reuse.as_ref(),
                self.max_file_bytes,
                &mut over,
            )
        };
        match loaded {
            Ok(loaded) => {
                let mut c = Candidate::compiled(loaded, started);
                c.note = note;
                if c.sha256 == current.sha256 {
                    return Built::Same {
                        sha256: c.sha256,
                        note: c.note,
                    };
                }
                Built::Commit(Box::new(c))
            }
            Err(errors) => Built::Invalid {
                sha256: text_sha256,
                errors: messages(errors),
            },
        }
    }

    /// What the rollouts set over a decoded table with these `plans` (nothing without
    /// rollouts; on a gateway that follows etcd the controller only learns the plans: the
    /// fleet's steps come with the table, see [`Reloader::apply_source`]).
    fn over(
        &self,
        plans: &Plans,
        running: &RouteTable,
        by: TriggerLabel,
    ) -> (Overrides, Option<serde_json::Value>) {
        match &self.overlay {
            Some(o) => o.over(plans, running, by),
            None => (Overrides::default(), None),
        }
    }

    /// Source: a table other than the routes file (an etcd revision), as routes.yaml text
    /// ([`SourceText`]), with the fleet's rollout steps read with it set over it. Content equal
    /// to the running table's at a version not above it is a no-op; otherwise the source's own
    /// check against the running table comes first (under the commit lock, so nothing changes
    /// the running table in between), then validation. A step that is newer than the table's
    /// keys gives the version its number and its trigger (`rollout`, route and step).
    pub fn apply_source(&self, trigger: Trigger, source: SourceText<'_>) -> ReloadReport {
        let SourceText {
            text,
            version,
            steps,
            name,
            locate,
            admit,
        } = source;
        let by = trigger.label();
        self.attempt(trigger, Caller::default(), |running, current| {
            let started = Instant::now();
            let text_sha = sha256_hex(text.as_bytes());
            let over = |model: &RoutesConfig| {
                let plans = plans(model);
                let (mut overrides, _) = self.over(&plans, &current.table, by);
                let applied = steps.over(&plans, &mut overrides);
                (overrides, FleetSteps::version(applied, version))
            };
            let (loaded, made) = if text_sha == running.text_sha256 {
                // The running text: decoded already, only the steps over it may differ.
                let (overrides, made) = over(&running.model);
                let sha = overrides.sha256_with(text.as_bytes());
                if sha == current.sha256 && made.0 <= current.version {
                    // Serving the fleet's table already (e.g. a local rollback to what the
                    // fleet then rolled back to): not divergent any more.
                    self.converged();
                    return Built::Same {
                        sha256: sha,
                        note: None,
                    }
                    .into();
                }
                if let Err(errors) = admit(&current.table) {
                    return invalid(text_sha, messages(errors));
                }
                let loaded = recompile(
                    running.text.clone(),
                    running.model.clone(),
                    running.reuse.as_ref(),
                    &current.table,
                    name,
                    overrides,
                )
                .map_err(messages);
                (loaded, made)
            } else {
                if let Err(errors) = admit(&current.table) {
                    return invalid(text_sha, messages(errors));
                }
                let mut made = (version, None);
                let loaded = routes_from_text_over(
                    name,
                    text.into_bytes(),
                    running.reuse.as_ref(),
                    crate::config::bounds::DEFAULT_MAX_FILE_BYTES,
                    &mut |model| {
                        let (overrides, m) = over(model);
                        made = m;
                        overrides
                    },
                )
                .map_err(|errors| messages(locate(errors)));
                (loaded, made)
            };
            let mut c = match loaded {
                Ok(loaded) => Candidate::compiled(loaded, started),
                Err(errors) => return invalid(text_sha, errors),
            };
            let (version, step) = made;
            c.revision = Some(version);
            if let Some((trigger, note)) = step {
                c.trigger = Some(trigger);
                c.note = Some(note);
            }
            // Cleared before the swap: a reader that sees this version never sees it divergent.
            self.converged();
            Built::Commit(Box::new(c)).into()
        })
    }

    /// A gateway that follows etcd serves the fleet's table again.
    fn converged(&self) {
        if let Some(source) = &self.source {
            source.lock().divergent = false;
        }
    }

    /// Records a candidate of `trigger` that could not even be assembled (etcd keys that are
    /// not a table): failed, the running version keeps serving.
    pub fn reject(&self, trigger: Trigger, errors: &ConfigErrors) -> ReloadReport {
        let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        self.attempt(trigger, Caller::default(), |_, _| {
            Built::Refused(errors).into()
        })
    }

    /// Source: rollback. Applies a kept version again — its text and the weights that were set
    /// over it — (default: the one before the running one), as a new version (on a gateway
    /// that follows etcd: a local one, `N.K`). A version that is not kept is refused before any
    /// attempt.
    pub fn rollback(&self, to: Option<VersionId>, caller: Caller) -> Result<ReloadReport, String> {
        // Answered without an attempt when there is nothing to roll back to.
        let target = self.rollback_target(to, version_id::of(&self.active.load()))?;
        let trigger = Trigger::Rollback { to: target };
        let report = self.attempt(trigger, caller, |running, current| {
            // Looked up again under the commit lock: a commit may have come in between.
            let target = match self.rollback_target(to, version_id::of(current)) {
                Ok(t) if t == target => t,
                Ok(t) => {
                    return Built::Refused(vec![format!(
                        "the version before the running one changed to {t} while the rollback waited; nothing rolled back"
                    )])
                    .into()
                }
                Err(e) => return Built::Refused(vec![e]).into(),
            };
            let built = match self.rollback_candidate(target, running, current) {
                Ok(c) => Built::Commit(Box::new(c)),
                Err(e) => Built::Refused(vec![e]),
            };
            Build {
                built,
                then: Some(Box::new(move |done: &Done<'_>| self.rolled_back(target, done))),
            }
        });
        Ok(report)
    }

    /// What a committed rollback does beside the table: the rollouts it touched hold its
    /// weights before any reload can set their steps again, and a gateway that follows etcd
    /// now serves something else than the fleet's table.
    fn rolled_back(&self, target: VersionId, done: &Done<'_>) {
        if version_id::of(done.after) == version_id::of(done.before) {
            return;
        }
        if let Some(o) = &self.overlay {
            o.rolled_back(target, &done.before.table, &done.after.table);
        }
        if let Some(source) = &self.source {
            source.lock().divergent = true;
        }
    }

    /// The kept version a rollback to `to` restores while `running` serves.
    fn rollback_target(
        &self,
        to: Option<VersionId>,
        running: VersionId,
    ) -> Result<VersionId, String> {
        let record = self.lock_record();
        let target = match to {
            Some(v) => v,
            None => (record.history.list().iter().rev())
                .map(|i| i.id())
                .find(|v| *v < running)
                .ok_or("no earlier version to roll back to")?,
        };
        if record.history.get(target).is_some() {
            return Ok(target);
        }
        let kept: Vec<String> = (record.history.list().iter())
            .map(|i| i.id().to_string())
            .collect();
        Err(format!(
            "version {target} is not kept (kept: {})",
            kept.join(", ")
        ))
    }

    /// The kept version `target` as a candidate: its table as this process compiled it, or
    /// (kept by an earlier process) its text compiled now with its overrides.
    fn rollback_candidate(
        &self,
        target: VersionId,
        running: &Running,
        current: &ActiveTable<TableMetrics>,
    ) -> Result<Candidate, String> {
        let started = Instant::now();
        let (text, compiled, overrides, sha) = {
            let record = self.lock_record();
            let Some(Kept { text, table, info }) = record.history.get(target) else {
                return Err(format!("version {target} is not kept"));
            };
            (
                text.clone(),
                table.clone(),
                info.overrides.clone(),
                info.sha256.clone(),
            )
        };
        if let Some(compiled) = compiled {
            return Ok(Candidate::kept(
                compiled,
                &current.table,
                text,
                overrides,
                sha,
                started,
            ));
        }
        let loaded = routes_from_text_over(
            &format!("version {target}"),
            text.as_bytes().to_vec(),
            running.reuse.as_ref(),
            crate::config::bounds::DEFAULT_MAX_FILE_BYTES.max(self.max_file_bytes),
            &mut |_| overrides.clone(),
        )
        .map_err(|e| format!("version {target} no longer compiles: {e}"))?;
        let mut c = Candidate::compiled(loaded, started);
        c.carried = Carried::by_identity(&c.table, &current.table);
        Ok(c)
    }
}
