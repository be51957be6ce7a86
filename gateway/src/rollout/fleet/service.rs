//! The fleet service of a gateway that follows etcd: once a second it keeps its lease, reads
//! the fleet's rollout keys, publishes its own window of every judged rollout, takes the
//! driver's key when nobody holds it, and — on the driver only — judges the fleet's window and
//! writes the moves. Controls made on this gateway are written by it too (`control.rs`); when
//! etcd is out of reach it judges its own window alone (`alone.rs`); a process that hands over
//! (binary upgrade) or stops gives its lease up, so that another gateway drives at once.

use super::super::controller::Controller;
use super::super::judge::Evaluation;
use super::super::plan::Plan;
use super::super::state::{now_ms, MovedBy, Phase, RolloutState};
use super::super::steps::Steps;
use super::keys;
use super::moves::{self, Mover, Written};
use super::record::{Counts, FiguresRecord, LocalAbort, ShadowRecord};
use super::store::{self, Lease, Listing};
use super::sum::{span, sum};
use super::view::FleetView;
use crate::config::EtcdSettings;
use crate::lifecycle::Lifecycle;
use crate::source::store::StoreError;
use async_trait::async_trait;
use etcd_client::Client;
use log::{info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a gateway renews its lease, publishes its windows and (the driver) judges.
pub const TICK: Duration = Duration::from_secs(1);
/// A window published longer ago than this (seconds) is not fresh: the driver promotes only
/// when every live gateway's window of the step is fresh.
pub const FRESH_S: u64 = 5;

pub struct FleetService {
    pub(super) settings: EtcdSettings,
    pub(super) controller: Arc<Controller>,
    pub(super) view: Arc<FleetView>,
    pub(super) steps: Arc<dyn Steps>,
    lifecycle: Arc<Lifecycle>,
    /// Breaches judged alone that held the step (`on_failure: pause`), already logged.
    pub(super) held_alone: Mutex<BTreeSet<(String, u64)>>,
}

/// A connection to etcd and this gateway's lease on it.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) lease: Lease,
    /// The presence key is written under the current lease.
    present: bool,
}

impl FleetService {
    pub fn new(
        settings: EtcdSettings,
        controller: Arc<Controller>,
        view: Arc<FleetView>,
        steps: Arc<dyn Steps>,
        lifecycle: Arc<Lifecycle>,
    ) -> FleetService {
        FleetService {
            settings,
            controller,
            view,
            steps,
            lifecycle,
            held_alone: Mutex::new(BTreeSet::new()),
        }
    }

    pub(super) fn me(&self) -> &str {
        &self.view.gateway_id
    }

    pub(super) fn prefix(&self) -> &str {
        &self.settings.prefix
    }

    /// Connects, and keeps the lease of an earlier connection when etcd still has it (the
    /// keys under it, the driver's included, stay this gateway's).
    async fn connect(&self, kept: &mut Option<i64>) -> Result<Conn, StoreError> {
        let mut client = crate::source::store::connect(&self.settings).await?;
        let lease = match *kept {
            Some(id) => {
                let mut old = Lease::keep(&mut client, id).await?;
                match old.renew().await? {
                    true => old,
                    false => Lease::grant(&mut client, self.settings.lease_ttl).await?,
                }
            }
            None => Lease::grant(&mut client, self.settings.lease_ttl).await?,
        };
        *kept = Some(lease.id);
        Ok(Conn {
            client,
            lease,
            present: false,
        })
    }

    /// This gateway's window of `plan`'s step at second `now`, as published; in the shadow
    /// stage, with its tally of the canary's answers to its copies over the stage.
    fn window(
        &self,
        plan: &Plan,
        s: &RolloutState,
        now: u64,
        abort: Option<&LocalAbort>,
    ) -> FiguresRecord {
        let (from, to) = span(plan, s.step_started_ms, now);
        let own = self.controller.own_window(plan, s.step_started_ms, now);
        FiguresRecord {
            gateway: self.me().to_string(),
            plan: plan.fingerprint.clone(),
            step_started_ms: s.step_started_ms,
            from,
            to,
            groups: own.iter().map(|(_, f)| Counts::from(f)).collect(),
            local_abort: abort
                .filter(|a| a.step_started_ms == s.step_started_ms)
                .cloned(),
            shadow: (self.controller.own_shadow(plan, s, now))
                .map(|(counts, span)| ShadowRecord::new(&counts, span)),
        }
    }

    /// One round with etcd: lease, read, publish, campaign, (drive), show.
    async fn round(
        &self,
        conn: &mut Option<Conn>,
        kept: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        let plans = self.controller.plans();
        if plans.is_empty() {
            // No rollout in the table: nothing is written to etcd (the lease, if any, lapses
            // and the keys under it go).
            *conn = None;
            let mut seen = self.view.seen();
            seen.driver = None;
            seen.driving = false;
            seen.sums.clear();
            return Ok(());
        }
        if conn.is_none() {
            *conn = Some(self.connect(kept).await?);
            info!("rollouts: connected to etcd as gateway {}", self.me());
        }
        let Some(c) = conn.as_mut() else {
            return Err(StoreError::Etcd("not connected".into()));
        };
        if !c.lease.renew().await? {
            warn!("rollouts: lease {:x} expired; taking a new one", c.lease.id);
            c.lease = Lease::grant(&mut c.client, self.settings.lease_ttl).await?;
            *kept = Some(c.lease.id);
            c.present = false;
        }
        let listing = store::list(&mut c.client, self.prefix()).await?;
        if !c.present || !listing.gateways.iter().any(|g| g == self.me()) {
            store::present(&mut c.client, self.prefix(), self.me(), c.lease.id).await?;
            c.present = true;
        }
        let now_ms = now_ms();
        let now = now_ms / 1000;
        let own = self.publish(c, &listing, &plans, now).await?;
        let driver = match &listing.driver {
            Some(d) => Some(d.clone()),
            None => store::campaign(&mut c.client, self.prefix(), self.me(), c.lease.id).await?,
        };
        let driving =
            (driver.as_ref()).is_some_and(|(id, lease)| id == self.me() && *lease == c.lease.id);
        if driving && !self.view.driving() {
            info!(
                "rollouts: this gateway ({}) drives the fleet's rollouts",
                self.me()
            );
        }
        let mut gateways = listing.gateways.clone();
        if !gateways.iter().any(|g| g == self.me()) {
            gateways.push(self.me().to_string());
        }
        gateways.sort();
        let mut shown = Shown::default();
        for (route, plan) in &plans {
            self.judge_route(
                c, route, plan, &listing, &own, &gateways, driving, now_ms, &mut shown,
            )
            .await?;
        }
        {
            let mut seen = self.view.seen();
            seen.connected = true;
            seen.round_at = Some(crate::stamp::now_rfc3339());
            seen.driver = driver.map(|(id, _)| id);
            seen.driving = driving;
            seen.gateways = gateways;
            seen.sums = shown.sums;
            let states = &shown.states;
            seen.local_aborts.retain(|route, a| {
                states
                    .get(route)
                    .is_some_and(|s| s.step_started_ms == a.step_started_ms)
            });
        }
        self.controller.follow(&shown.states, shown.evaluations);
        Ok(())
    }

    /// Publishes this gateway's window of every rollout under judgement; returns them.
    async fn publish(
        &self,
        c: &mut Conn,
        listing: &Listing,
        plans: &BTreeMap<String, Plan>,
        now: u64,
    ) -> Result<BTreeMap<String, FiguresRecord>, StoreError> {
        let aborts = self.view.seen().local_aborts.clone();
        let mut own = BTreeMap::new();
        for (route, plan) in plans {
            let state = (listing.routes.get(route)).and_then(|r| r.state.as_ref());
            let Some(s) = state.filter(|s| s.fingerprint == plan.fingerprint) else {
                continue;
            };
            if !moves::judged(s.state) {
                continue;
            }
            let record = self.window(plan, s, now, aborts.get(route));
            let key = keys::figures(self.prefix(), route, self.me());
            store::put_leased(&mut c.client, &key, &record, c.lease.id).await?;
            own.insert(route.clone(), record);
        }
        Ok(own)
    }

    /// Sums one rollout's windows and, on the driver, judges them and writes the move.
    #[allow(clippy::too_many_arguments)]
    async fn judge_route(
        &self,
        c: &mut Conn,
        route: &str,
        plan: &Plan,
        listing: &Listing,
        own: &BTreeMap<String, FiguresRecord>,
        gateways: &[String],
        driving: bool,
        now_ms: u64,
        shown: &mut Shown,
    ) -> Result<(), StoreError> {
        let keys = listing.routes.get(route);
        let state = keys.and_then(|k| k.state.clone());
        let mut current = state.clone().filter(|s| s.fingerprint == plan.fingerprint);
        let started = current.as_ref().map_or(0, |s| s.step_started_ms);
        let mut windows: Vec<FiguresRecord> = (keys.into_iter())
            .flat_map(|k| k.figures.iter())
            .filter(|f| f.gateway != self.me())
            .cloned()
            .collect();
        windows.extend(own.get(route).cloned());
        let fleet = sum(plan, started, &windows);
        if driving {
            let now = now_ms / 1000;
            let fresh: BTreeSet<&str> = (windows.iter())
                .filter(|w| w.plan == plan.fingerprint && w.step_started_ms == started)
                .filter(|w| w.to + FRESH_S >= now)
                .map(|w| w.gateway.as_str())
                .collect();
            let missing: Vec<String> = (gateways.iter())
                .filter(|g| !fresh.contains(g.as_str()))
                .cloned()
                .collect();
            let who = Mover {
                by: MovedBy::Rollout,
                gateway: self.me().to_string(),
                identity: None,
                client: None,
            };
            // Only the driver queries Prometheus and asks `confirm_step`: its readings and
            // answers join the fleet's state here.
            let prometheus = self.controller.prometheus_verdicts(plan, started);
            let mut state = state;
            if let Some(s) = state.as_mut() {
                self.controller.with_answer(route, s);
            }
            let (e, written) = moves::drive(
                plan,
                state.as_ref(),
                &fleet,
                &missing,
                &who,
                now_ms,
                prometheus,
            );
            if let (Some(e), Some(s)) = (&e, &current) {
                if let (Some((gate, why)), true) = (e.failure(), moves::judged(s.state)) {
                    self.controller.gauges.breach(route, &gate);
                    if (s.step > 0 || s.shadow) && written.is_some() {
                        self.controller.announce_breach(plan, s, &gate, &why);
                    }
                }
            }
            if let Some(w) = written {
                let expect = keys.map_or(0, |k| k.state_mod);
                let fence = Some((self.me(), c.lease.id));
                match store::write_move(&mut c.client, self.prefix(), route, expect, &w, fence)
                    .await?
                {
                    Some(revision) => {
                        log_move(route, &w, revision);
                        current = Some(w.state);
                    }
                    None => log::debug!(
                        "rollout {route}: a control came first; judged again next round"
                    ),
                }
            }
            if let Some(e) = e {
                shown.evaluations.insert(route.to_string(), e);
            }
            if !missing.is_empty() {
                log::debug!(
                    "rollout {route}: no fresh window yet from {}",
                    missing.join(", ")
                );
            }
        } else if let Some(s) = &current {
            let e = moves::evaluate(plan, s, &fleet, now_ms);
            shown.evaluations.insert(route.to_string(), e);
        }
        if let Some(s) = current {
            shown.states.insert(route.to_string(), s);
        }
        shown.sums.insert(route.to_string(), fleet);
        Ok(())
    }

    /// Gives the lease up (handover or stop): the driver's key, the windows and the presence
    /// go with it.
    async fn give_up(&self, conn: &mut Option<Conn>, kept: &mut Option<i64>) {
        if let Some(mut c) = conn.take() {
            match c.lease.revoke(&mut c.client).await {
                Ok(()) => info!("rollouts: gave up this gateway's lease (another gateway drives)"),
                Err(e) => warn!(
                    "rollouts: could not give up the lease ({e}); it expires within {:?}",
                    self.settings.lease_ttl
                ),
            }
        }
        *kept = None;
        let mut seen = self.view.seen();
        seen.connected = false;
        seen.driver = None;
        seen.driving = false;
    }
}

/// What one round shows: the states read or written, the fleet's evaluations, the sums.
#[derive(Default)]
struct Shown {
    states: BTreeMap<String, RolloutState>,
    evaluations: BTreeMap<String, Evaluation>,
    sums: BTreeMap<String, super::sum::Sum>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A move written to etcd, in this gateway's log (every gateway logs the version it makes).
pub(super) fn log_move(route: &str, w: &Written, revision: u64) {
    let s = &w.state;
    let level = match s.state {
        Phase::Failed | Phase::Aborted | Phase::Paused => log::Level::Warn,
        _ => log::Level::Info,
    };
    let reason = (s.last_reason())
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    log::log!(
        level,
        "rollout {route}: {} at step {} (canary {}%), written at etcd revision {revision} by {}{reason}",
        s.state.as_str(),
        s.step,
        s.share.unwrap_or(0),
        s.moved_by
    );
}

#[async_trait]
impl BackgroundService for FleetService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut controls) = self.view.take_controls() else {
            return;
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut conn, mut kept) = (None, None);
        let mut gave_up = false;
        let mut down: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    self.give_up(&mut conn, &mut kept).await;
                    return;
                }
                Some(req) = controls.recv() => {
                    self.control(&mut conn, req).await;
                    continue;
                }
                _ = tick.tick() => {}
            }
            if self.lifecycle.is_draining() {
                if !gave_up {
                    self.give_up(&mut conn, &mut kept).await;
                    gave_up = true;
                }
                continue;
            }
            let round = self.round(&mut conn, &mut kept);
            let error = match tokio::time::timeout(self.settings.lease_ttl, round).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {:?}", self.settings.lease_ttl)),
            };
            match error {
                None => {
                    if down.take().is_some() {
                        info!("rollouts: etcd answers again; the fleet judges the rollouts");
                    }
                }
                Some(e) => {
                    if down.is_none() {
                        warn!("rollouts: etcd is out of reach ({e}): no promotion; this gateway judges its own window until it answers");
                    }
                    down = Some(e);
                    conn = None;
                    self.alone().await;
                }
            }
        }
    }
}
