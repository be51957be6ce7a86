//! A control (pause, resume, promote, abort) made on this gateway for the fleet's rollout: a
//! compare-and-swap of the rollout's state in etcd, whichever gateway drives; audited here with
//! the admin identity of the caller.

use super::super::controls::{decide, Control};
use super::super::error::RolloutError;
use super::super::state::{now_ms, MovedBy};
use super::moves::{self, Mover};
use super::service::{log_move, Conn, FleetService};
use super::store;
use super::view::ControlRequest;
use crate::reload::Caller;
use crate::source::store::StoreError;

impl FleetService {
    /// Carries out a control made on this gateway: a compare-and-swap of the rollout's state
    /// (decided again, a few times at most, when another move came first), audited here with
    /// the caller's admin identity.
    pub(super) async fn control(&self, conn: &mut Option<Conn>, req: ControlRequest) {
        let ControlRequest {
            route,
            control,
            caller,
            reply,
        } = req;
        let planned = self.controller.plans().contains_key(&route);
        let result = match conn.as_mut() {
            _ if !planned => Err(RolloutError::NoRollout(route.clone())),
            None => Err(RolloutError::Unavailable(format!(
                "etcd ({}) is out of reach from this gateway; try again, or from another gateway",
                self.settings.endpoints.join(", ")
            ))),
            Some(c) => {
                let attempt = self.control_in_etcd(c, &route, control, &caller);
                match tokio::time::timeout(self.settings.lease_ttl, attempt).await {
                    Ok(r) => r,
                    Err(_) => Err(RolloutError::Unavailable(
                        "etcd did not answer in time".into(),
                    )),
                }
            }
        };
        let _ = reply.send(result);
    }

    async fn control_in_etcd(
        &self,
        c: &mut Conn,
        route: &str,
        control: Control,
        caller: &Caller,
    ) -> Result<(), RolloutError> {
        let unavailable = |e: StoreError| RolloutError::Unavailable(e.to_string());
        for _ in 0..5 {
            let plan = (self.controller.plans().remove(route))
                .ok_or_else(|| RolloutError::NoRollout(route.to_string()))?;
            let (state, expect) = store::state(&mut c.client, self.prefix(), route)
                .await
                .map_err(unavailable)?;
            let now = now_ms();
            let s = match state {
                Some(s) if s.fingerprint == plan.fingerprint => s,
                _ => moves::start(&plan, now).state,
            };
            let n = decide(route, control, &s, &plan)?;
            let who = Mover {
                by: MovedBy::Control,
                gateway: self.me().to_string(),
                identity: caller.identity.clone(),
                client: caller.client.clone(),
            };
            let written = moves::carry_out(&plan, &s, n, &who, now);
            let done =
                store::write_move(&mut c.client, self.prefix(), route, expect, &written, None)
                    .await
                    .map_err(unavailable)?;
            let Some(revision) = done else { continue };
            log_move(route, &written, revision);
            let record = serde_json::json!({
                "time": crate::stamp::now_rfc3339(),
                "trigger": "rollout",
                "route": route,
                "control": control.as_str(),
                "client": caller.client,
                "identity": caller.identity,
                "state": written.state.state.as_str(),
                "step": written.state.step,
                "fleet": { "revision": revision, "gateway": self.me() },
            });
            if let Err(e) = self.steps.audit(&record) {
                log::error!("rollout {route}: audit: {e}");
            }
            self.controller.follow_one(written.state);
            return Ok(());
        }
        Err(RolloutError::Superseded)
    }
}
