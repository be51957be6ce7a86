//! Trigger: a rollout step (or an abort). The running version's text with one route's weights
//! rewritten, committed through the one commit path with trigger `rollout` (route, step).

use super::candidate::Candidate;
use super::overlay::Overlay;
use super::reloader::Reloader;
use super::report::ReloadReport;
use super::trigger::Trigger;
use crate::config::routes_from_text;
use crate::stamp::sha256_hex;
use std::sync::Arc;
use std::time::Instant;

/// What a rollout makes of the running text: `None` when the move no longer applies (a file
/// change moved the rollout first); otherwise the new text and the audit note.
pub type RolloutRewrite<'a> =
    &'a mut dyn FnMut(&str) -> Result<Option<(String, serde_json::Value)>, String>;

/// Called with the report once the move is committed (or found to change nothing), still under
/// the commit lock: the rollout records its new state there, so that whoever sees the state
/// also sees the table, and no other trigger comes in between.
pub type RolloutApplied<'a> = &'a mut dyn FnMut(&ReloadReport);

impl Reloader {
    /// Commits a rollout's move. `rewrite` and `applied` run under the commit lock, so that the
    /// rollout's state and the table change together with respect to file reloads.
    pub fn commit_rollout(
        &self,
        route: &str,
        step: usize,
        client: Option<String>,
        rewrite: RolloutRewrite<'_>,
        applied: RolloutApplied<'_>,
    ) -> Result<ReloadReport, String> {
        let trigger = Trigger::Rollout {
            route: route.to_string(),
            step,
        };
        let mut running = self.begin(&trigger);
        let result = (|| {
            let current = self.active.load_full();
            let id = super::version_id::of(&current);
            let text = (self.lock_record().history.get(id))
                .map(|k| k.text.clone())
                .ok_or_else(|| format!("version {id} has no kept text"))?;
            let Some((new_text, note)) = rewrite(&text)? else {
                return Err("superseded".to_string());
            };
            let started = Instant::now();
            let sha = sha256_hex(new_text.as_bytes());
            let mut report = ReloadReport::new(
                trigger.clone(),
                id,
                super::report::Caller {
                    client: client.clone(),
                    identity: None,
                },
            );
            report.rollout = Some(note.clone());
            if sha == current.sha256 {
                return Ok(self.no_op(report, sha));
            }
            let file = format!("rollout of {route}");
            match routes_from_text(&file, new_text.into_bytes(), running.reuse.as_ref()) {
                Ok(loaded) => {
                    let mut c = Candidate::compiled(loaded, sha, started);
                    c.note = Some(note);
                    Ok(self.commit(
                        &mut running,
                        c,
                        trigger.clone(),
                        super::report::Caller {
                            client: client.clone(),
                            identity: None,
                        },
                        None,
                    ))
                }
                Err(errors) => {
                    report.errors = errors.0.iter().map(ToString::to_string).collect();
                    Ok(self.fail(report))
                }
            }
        })();
        if let Ok(report) = &result {
            if report.errors.is_empty() {
                applied(report);
            }
        }
        drop(running);
        self.lock_record().in_progress = None;
        result
    }

    /// Installs the overlay file triggers pass their text through (once, at startup).
    pub fn set_overlay(&self, overlay: Arc<dyn Overlay>) {
        let _ = self.overlay.set(overlay);
    }

    /// Appends a record that is not a change of the table (a rollout control that moves no
    /// weight) to the audit log.
    pub fn audit_event(&self, record: &serde_json::Value) -> Result<(), String> {
        self.audit_log().append(record)
    }
}
