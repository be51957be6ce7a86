//! Source: a rollout's move (a step, an abort). The running version's text and model with one
//! route's weights set over them — no text is rewritten or parsed — committed through the one
//! attempt with trigger `rollout` (route, step). The controller reaches it through
//! [`Steps`], handed to each of its calls.

use super::attempt::{Build, Built};
use super::reloader::Reloader;
use super::report::Caller;
use super::trigger::Trigger;
use super::version_id::{self, VersionId};
use crate::config::recompile;
use crate::rollout::steps::{Applied, Decide, Decision, Steps};
use crate::rollout::RolloutError;
use crate::routing::RouteTable;
use std::sync::Arc;
use std::time::Instant;

impl Steps for Reloader {
    fn table(&self) -> Arc<RouteTable> {
        Reloader::table(self)
    }

    fn version(&self) -> VersionId {
        version_id::of(&self.active.load())
    }

    /// `decide` and `applied` run under the commit lock, so that the rollout's state and the
    /// table change together with respect to every other source.
    fn commit_step(
        &self,
        route: &str,
        step: usize,
        caller: Caller,
        decide: Decide<'_>,
        applied: Applied<'_>,
    ) -> Result<(), RolloutError> {
        let trigger = Trigger::Rollout {
            route: route.to_string(),
            step,
        };
        let mut outcome = Ok(());
        let report = self.attempt(trigger, caller, |running, current| {
            let (overrides, note) = match decide(&running.overrides) {
                Ok(Decision::Set(overrides, note)) => (overrides, note),
                Ok(Decision::Superseded) => {
                    outcome = Err(RolloutError::Superseded);
                    return Built::Withdrawn.into();
                }
                Err(e) => {
                    outcome = Err(e);
                    return Built::Withdrawn.into();
                }
            };
            let started = Instant::now();
            let sha256 = overrides.sha256_with(running.text.as_bytes());
            if sha256 == current.sha256 {
                return Build {
                    built: Built::Same {
                        sha256,
                        note: Some(note),
                    },
                    then: Some(Box::new(move |_| applied())),
                };
            }
            let loaded = recompile(
                running.text.clone(),
                running.model.clone(),
                running.reuse.as_ref(),
                &current.table,
                &format!("rollout of {route}"),
                overrides,
            );
            match loaded {
                Ok(loaded) => {
                    let mut c = super::Candidate::compiled(loaded, started);
                    c.note = Some(note);
                    Build {
                        built: Built::Commit(Box::new(c)),
                        then: Some(Box::new(move |_| {
                            applied();
                            // A gateway that follows etcd serves something else than the
                            // fleet's table until the fleet's next revision.
                            if let Some(source) = &self.source {
                                source.lock().divergent = true;
                            }
                        })),
                    }
                }
                Err(errors) => {
                    Built::Refused(errors.0.iter().map(ToString::to_string).collect()).into()
                }
            }
        });
        outcome?;
        match report.errors.is_empty() {
            true => Ok(()),
            false => Err(RolloutError::NotApplied(report.errors.join("; "))),
        }
    }

    fn audit(&self, record: &serde_json::Value) -> Result<(), String> {
        self.audit_log().append(record)
    }
}
