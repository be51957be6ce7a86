//! The gateway's etcd source: list the fleet's table at startup, then watch the prefix from the
//! revision after; every revision that changes the table (its `current` key or a key of the
//! generation in use) is a candidate, read at that revision, through the one commit path; one
//! that would empty the gateway by accident (`current` naming a generation with no keys, a
//! table left without routes: see [`super::layout`]) is rejected like an invalid one. Pending
//! revisions are coalesced: of the watch answers already received (those that came while a
//! table was being applied included), only the newest table is applied. A watch cancelled by
//! compaction re-lists; a lost connection is retried with backoff and resumes from the
//! revision after the last one seen, applying the newest table written meanwhile (re-listing if
//! it was compacted).
//! The last applied table is kept in `state_dir` by the history; a gateway that starts while
//! etcd is unreachable serves it, marked stale until etcd answers.
//!
//! The steps of the fleet's rollouts are read with the table (`PREFIX/rollouts/ROUTE/step`,
//! at the same revision) and set over it: a step is one more revision that changes the table
//! every gateway serves. The other rollout keys (states, windows, the driver's) change no
//! table: the watch passes them by (the fleet service reads them, `rollout/fleet/`).

use super::layout::{generation_dir, generation_of, Assembled, CURRENT};
use super::status::SourceStatus;
use super::store::{self, StoreError, Table};
use crate::config::table::compile_rollout::plans;
use crate::config::{
    routes_from_text, routes_from_text_over, ConfigErrors, EtcdSettings, LoadedRoutes, Overrides,
};
use crate::lifecycle::Lifecycle;
use crate::reload::{History, HistoryLimits, Outcome, Reloader, SourceText, Trigger};
use crate::rollout::fleet::keys::{self as rollout_keys, Key};
use crate::rollout::FleetSteps;
use crate::routing::RouteTable;
use crate::telemetry::Metrics;
use async_trait::async_trait;
use etcd_client::{Client, EventType, WatchOptions};
use log::{error, info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The table a gateway starts with, and where it came from.
pub struct Initial {
    pub loaded: LoadedRoutes,
    /// Its version: the etcd revision, or the cached version's number.
    pub version: u64,
    pub trigger: Trigger,
    pub status: Arc<SourceStatus>,
    /// The store revision it was read at and the generation in use (absent: from the cache).
    pub read: Option<(u64, String)>,
}

/// Reads the fleet's table before the server starts. etcd unreachable, or its table invalid:
/// the table cached in `state_dir` (the last applied version), with a warning; neither: an
/// error that says what to do.
pub fn initial(
    settings: &EtcdSettings,
    state_dir: &std::path::Path,
    limits: HistoryLimits,
) -> Result<Initial, String> {
    let status = Arc::new(SourceStatus::new(settings));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime to read etcd: {e}"))?;
    let read = runtime.block_on(async {
        let mut client = store::connect(settings).await?;
        store::read(&mut client, &settings.prefix, None).await
    });
    drop(runtime);
    let problem = match read {
        Ok(Some(table)) => match compile_first(&settings.prefix, &table) {
            Ok((loaded, version)) => {
                let mut s = status.lock();
                s.connected = true;
                s.revision = Some(version);
                drop(s);
                return Ok(Initial {
                    loaded,
                    version,
                    trigger: Trigger::Etcd { revision: version },
                    status,
                    read: Some((table.read_revision, table.generation)),
                });
            }
            Err(errors) => {
                for e in &errors.0 {
                    error!("{e}");
                }
                status.lock().rejected_revision = Some(table.read_revision);
                format!("the table in etcd at revision {} is invalid ({} error(s) above)", table.read_revision, errors.0.len())
            }
        },
        Ok(None) => format!(
            "etcd has no table under {} yet (`dyegate push routes.yaml -c gateway.yaml` writes one)",
            settings.prefix
        ),
        Err(e) => {
            status.lock().last_connect_error = Some(e.to_string());
            format!("etcd unreachable: {e}")
        }
    };
    let history = History::load(state_dir, limits);
    let Some(kept) = history.latest() else {
        return Err(format!(
            "{problem}, and state_dir {} has no cached table to start from",
            state_dir.display()
        ));
    };
    let name = format!("{}/versions/{}.yaml", state_dir.display(), kept.info.id());
    // With the weights it was served with (a fleet rollout's step).
    let overrides = kept.info.overrides.clone();
    let loaded = routes_from_text_over(
        &name,
        kept.text.as_bytes().to_vec(),
        None,
        crate::config::bounds::DEFAULT_MAX_FILE_BYTES,
        &mut |_| overrides.clone(),
    )
    .map_err(|e| format!("{problem}, and the cached table no longer compiles:\n{e}"))?;
    warn!(
        "{problem}: serving the cached table (version {}) from {}; stale until etcd answers",
        kept.info.id(),
        state_dir.display()
    );
    status.lock().stale = true;
    Ok(Initial {
        loaded,
        version: kept.info.version,
        trigger: Trigger::Startup,
        status,
        read: None,
    })
}

/// Validates and compiles a table read from etcd; errors name the key they are in.
pub fn compile(
    prefix: &str,
    table: &Table,
    previous: Option<&crate::config::incremental::Reuse>,
) -> Result<LoadedRoutes, ConfigErrors> {
    compile_assembled(prefix, table, &table.assemble(prefix)?, previous)
}

fn compile_assembled(
    prefix: &str,
    table: &Table,
    assembled: &Assembled,
    previous: Option<&crate::config::incremental::Reuse>,
) -> Result<LoadedRoutes, ConfigErrors> {
    let name = format!("etcd:{}", table.dir(prefix));
    routes_from_text(&name, assembled.text.clone().into_bytes(), previous)
        .map_err(|e| assembled.locate_all(e))
}

/// The first table a gateway serves, with the fleet's rollout steps set over it, and its
/// version (see `rollout::fleet::weights`): compiled, and refused when it has no routes
/// without the `allow-empty` mark (nothing runs yet to compare with).
fn compile_first(prefix: &str, table: &Table) -> Result<(LoadedRoutes, u64), ConfigErrors> {
    let assembled = table.assemble(prefix)?;
    table.admit(prefix, &assembled, None)?;
    let name = format!("etcd:{}", table.dir(prefix));
    let mut applied = None;
    let loaded = routes_from_text_over(
        &name,
        assembled.text.clone().into_bytes(),
        None,
        crate::config::bounds::DEFAULT_MAX_FILE_BYTES,
        &mut |model| {
            let mut overrides = Overrides::default();
            applied = Some(table.steps.over(&plans(model), &mut overrides));
            overrides
        },
    )
    .map_err(|e| assembled.locate_all(e))?;
    let version = applied.map_or(table.revision, |a| FleetSteps::version(a, table.revision).0);
    Ok((loaded, version))
}

/// The background service that follows etcd.
pub struct EtcdSource {
    settings: EtcdSettings,
    reloader: Arc<Reloader>,
    metrics: Arc<Metrics>,
    lifecycle: Arc<Lifecycle>,
    status: Arc<SourceStatus>,
    /// Where the startup read left off.
    start: Option<(u64, String)>,
}

/// Why a watch session ended.
enum End {
    Shutdown,
    /// Compacted past what we need: list again.
    Relist(String),
    Lost(StoreError),
}

/// Where the next session starts.
struct Position {
    /// The last revision whose events were all seen (watch from the next one).
    seen: Option<u64>,
    /// The generation `current` named at `seen`.
    generation: Option<String>,
}

impl EtcdSource {
    pub fn new(
        settings: EtcdSettings,
        reloader: Arc<Reloader>,
        metrics: Arc<Metrics>,
        lifecycle: Arc<Lifecycle>,
        status: Arc<SourceStatus>,
        start: Option<(u64, String)>,
    ) -> EtcdSource {
        // Shown from the start, before the service runs: a scrape (or a test) right after the
        // listeners open finds the state of the startup read, not a missing series.
        metrics.set_source_connected(status.snapshot().connected);
        EtcdSource {
            settings,
            reloader,
            metrics,
            lifecycle,
            status,
            start,
        }
    }

    fn set_connected(&self, connected: bool, error: Option<String>) {
        let mut s = self.status.lock();
        if s.connected != connected {
            match &error {
                Some(e) => warn!("etcd: disconnected ({e}); the last good table keeps serving"),
                None => info!("etcd: connected to {}", self.settings.endpoints.join(", ")),
            }
        }
        // The gauge first, under the status lock: whoever reads the new state in `/status`
        // scrapes it in `dyegate_source_connected` too.
        self.metrics.set_source_connected(connected);
        s.connected = connected;
        if connected {
            s.stale = false;
            s.last_connect_error = None;
        } else if error.is_some() {
            s.last_connect_error = error;
        }
    }

    /// Applies the table read at store revision `at` as the candidate numbered `version` (the
    /// table's own revision, [`Table::revision`]); a rejection is recorded at `at`, the
    /// revision that brought the table (a deletion leaves the table's own revision behind).
    async fn apply(&self, table: Table, version: u64, at: u64) {
        if self.lifecycle.is_draining() {
            info!("draining: etcd revision {version} left to the new process");
            return;
        }
        let reloader = self.reloader.clone();
        let prefix = self.settings.prefix.clone();
        let trigger = Trigger::Etcd { revision: version };
        let report = tokio::task::spawn_blocking(move || {
            let assembled = match table.assemble(&prefix) {
                Ok(a) => a,
                Err(errors) => return reloader.reject(trigger, &errors),
            };
            let name = format!("etcd:{}", table.dir(&prefix));
            let source = SourceText {
                text: assembled.text.clone(),
                version,
                steps: &table.steps,
                name: &name,
                locate: &|e| assembled.locate_all(e),
                admit: &|running: &RouteTable| {
                    table.admit(&prefix, &assembled, Some(running.routes().len()))
                },
            };
            reloader.apply_source(trigger, source)
        })
        .await;
        // The revision is shown once it is dealt with: whoever sees it in `/status` is served
        // its table (or sees it rejected), never the one before.
        let mut status = self.status.lock();
        status.revision = Some(version);
        match report {
            Ok(r) if r.result == Outcome::Failed => status.rejected_revision = Some(at),
            Ok(r) => {
                // A step's revision is the version, above the table's own.
                status.revision = Some(version.max(r.version_after.version));
                status.rejected_revision = None;
            }
            Err(e) => warn!("etcd: applying revision {version} failed: {e}"),
        }
    }

    /// [`store::read`], authenticating again once when etcd says the token expired ("invalid
    /// auth token": etcd's tokens live `--auth-token-ttl`, 300 s by default, from their last
    /// use, and the client only authenticates when it connects): the watch stays open.
    async fn read(
        &self,
        client: &mut Client,
        revision: Option<u64>,
    ) -> Result<Option<Table>, StoreError> {
        let prefix = &self.settings.prefix;
        match store::read(client, prefix, revision).await {
            Err(StoreError::Etcd(m)) if m.contains("invalid auth token") => {
                let Some((user, password)) = self.settings.user.clone() else {
                    return Err(StoreError::Etcd(m));
                };
                info!("etcd: the auth token expired; authenticating again as {user}");
                // Without the expired token: etcd refuses a request that carries one, the
                // authentication included.
                client.remove_client_auth();
                (client.set_client_auth(user, password).await)
                    .map_err(|e| StoreError::Etcd(format!("authenticating again: {e}")))?;
                store::read(client, prefix, revision).await
            }
            r => r,
        }
    }

    /// Lists the table and applies it; returns where to watch from.
    async fn list(&self, client: &mut Client) -> Result<Position, StoreError> {
        match self.read(client, None).await? {
            Some(table) => {
                let (seen, generation) = (table.read_revision, table.generation.clone());
                let version = table.revision;
                self.apply(table, version, seen).await;
                Ok(Position {
                    seen: Some(seen),
                    generation: Some(generation),
                })
            }
            None => {
                warn!(
                    "etcd: no table under {} yet; serving the current one",
                    self.settings.prefix
                );
                Ok(Position {
                    seen: None,
                    generation: None,
                })
            }
        }
    }

    /// One connection: (list if asked,) watch, apply each revision that changes the table.
    async fn session(&self, shutdown: &mut ShutdownWatch, pos: &mut Position, relist: bool) -> End {
        let mut client = match store::connect(&self.settings).await {
            Ok(c) => c,
            Err(e) => return End::Lost(e),
        };
        if relist || pos.seen.is_none() {
            match self.list(&mut client).await {
                Ok(p) => *pos = p,
                Err(StoreError::Compacted(m)) => return End::Relist(m),
                Err(e) => return End::Lost(e),
            }
        }
        let prefix = &self.settings.prefix;
        let start = pos.seen.map_or(0, |r| r as i64 + 1);
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start)
            .with_progress_notify();
        let mut watch_client = client
            .watch_client()
            .max_decoding_message_size(store::MAX_ANSWER);
        let (_watcher, mut stream) = match watch_client.watch(prefix.as_str(), Some(options)).await
        {
            Ok(w) => w,
            Err(e) => return End::Lost(StoreError::Etcd(format!("watching {prefix}: {e}"))),
        };
        self.set_connected(true, None);
        loop {
            let message = tokio::select! {
                _ = shutdown.changed() => return End::Shutdown,
                m = stream.message() => m,
            };
            let mut batch = match answer(prefix, message) {
                Ok(r) => vec![r],
                Err(end) => return end,
            };
            // Everything already received joins the batch (what arrived while the last table
            // was applied included): only the newest table is applied, never a queue of stale
            // ones (a storm of puts to one key would otherwise delay the next push without
            // bound). Polled once each: a message not yet here waits for the next turn.
            while let Ok(message) = tokio::time::timeout(Duration::ZERO, stream.message()).await {
                match answer(prefix, message) {
                    Ok(r) => batch.push(r),
                    Err(end) => return end,
                }
            }
            if let Some(end) = self.apply_batch(&mut client, pos, &batch).await {
                return end;
            }
        }
    }

    /// Applies the newest table among the revisions of `batch` (watch answers, in order), if
    /// any of them changes it; moves `pos` past the batch once that is done. A connection
    /// lost half-way resumes where `pos` says: nothing is skipped.
    async fn apply_batch(
        &self,
        client: &mut Client,
        pos: &mut Position,
        batch: &[etcd_client::WatchResponse],
    ) -> Option<End> {
        let prefix = &self.settings.prefix;
        let mut generation = pos.generation.clone();
        let (mut newest, mut last) = (None, None);
        for resp in batch {
            if let Some(h) = resp.header().filter(|_| resp.events().is_empty()) {
                // A progress notification: everything up to its revision was seen.
                last = last.max(Some(h.revision().max(0) as u64));
            }
            let (changed, l) = changed_revisions(prefix, resp.events(), &mut generation);
            newest = newest.max(changed.last().copied());
            last = last.max(l);
        }
        if let Some(revision) = newest {
            match self.read(client, Some(revision)).await {
                Ok(Some(table)) => {
                    // Numbered as a list would number it (the highest mod revision among
                    // `current` and the generation's keys), not by the revision of the event:
                    // every gateway gives one table one version, whatever it saw.
                    let (g, version) = (table.generation.clone(), table.revision);
                    self.apply(table, version, revision).await;
                    pos.generation = Some(g);
                }
                Ok(None) => {
                    error!("etcd: revision {revision} removed {prefix}{CURRENT}; the last good table keeps serving");
                    self.status.lock().rejected_revision = Some(revision);
                    pos.generation = None;
                }
                Err(StoreError::Compacted(m)) => return Some(End::Relist(m)),
                Err(e) => return Some(End::Lost(e)),
            }
            pos.seen = Some(pos.seen.unwrap_or(0).max(revision));
        }
        if let Some(last) = last {
            pos.seen = Some(pos.seen.unwrap_or(0).max(last));
            pos.generation = generation;
        }
        None
    }
}

/// One message of the watch stream as a watch answer, or how the session ends (the stream
/// ended or failed: connection lost; cancelled by compaction: list again).
fn answer(
    prefix: &str,
    message: Result<Option<etcd_client::WatchResponse>, etcd_client::Error>,
) -> Result<etcd_client::WatchResponse, End> {
    let resp = match message {
        Ok(Some(r)) => r,
        Ok(None) => return Err(End::Lost(StoreError::Etcd("the watch stream ended".into()))),
        Err(e) => {
            return Err(End::Lost(StoreError::Etcd(format!(
                "watching {prefix}: {e}"
            ))))
        }
    };
    if resp.canceled() || resp.compact_revision() > 0 {
        return Err(End::Relist(format!(
            "watch cancelled (compacted up to revision {}): {}",
            resp.compact_revision(),
            resp.cancel_reason()
        )));
    }
    Ok(resp)
}

/// The revisions among `events` that change the table (`current`, or a key of the generation
/// it names, followed through the events), in order, and the last revision of all events.
fn changed_revisions(
    prefix: &str,
    events: &[etcd_client::Event],
    generation: &mut Option<String>,
) -> (Vec<u64>, Option<u64>) {
    let current_key = format!("{prefix}{CURRENT}");
    let mut changed: Vec<u64> = Vec::new();
    let mut last = None;
    for ev in events {
        let Some(kv) = ev.kv() else { continue };
        let key = String::from_utf8_lossy(kv.key());
        let revision = kv.mod_revision().max(0) as u64;
        let relevant = if key == current_key {
            *generation = match ev.event_type() {
                EventType::Put => {
                    Some(generation_of(&String::from_utf8_lossy(kv.value())).to_string())
                }
                EventType::Delete => None,
            };
            true
        } else if let Some(k) = rollout_keys::parse(prefix, &key) {
            // A step changes the weights every gateway serves; the rest of the rollout keys
            // (states, windows, the driver's) change no table.
            matches!(k, Key::Step(_))
        } else {
            (generation.as_ref()).is_some_and(|g| key.starts_with(&generation_dir(prefix, g)))
        };
        if relevant && changed.last() != Some(&revision) {
            changed.push(revision);
        }
        last = Some(revision);
    }
    (changed, last)
}

#[async_trait]
impl BackgroundService for EtcdSource {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let status = self.status.snapshot();
        // A startup that read etcd watches from the revision after; one from the cache lists.
        let mut pos = Position {
            seen: self.start.as_ref().map(|(r, _)| *r),
            generation: self.start.as_ref().map(|(_, g)| g.clone()),
        };
        let mut relist = pos.seen.is_none();
        self.metrics.set_source_connected(status.connected);
        let mut backoff = BACKOFF_MIN;
        loop {
            let began = std::time::Instant::now();
            match self.session(&mut shutdown, &mut pos, relist).await {
                End::Shutdown => return,
                End::Relist(why) => {
                    warn!("etcd: {why}; listing {} again", self.settings.prefix);
                    self.status.lock().relists += 1;
                    relist = true;
                    continue;
                }
                End::Lost(e) => {
                    self.set_connected(false, Some(e.to_string()));
                    relist = pos.seen.is_none();
                }
            }
            if began.elapsed() > BACKOFF_MAX * 2 {
                backoff = BACKOFF_MIN;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}
