//! What a gateway knows of its fleet's rollouts: written by the fleet service every round, read
//! by the controller's status and the metrics; and the way a control made on this gateway
//! reaches the service, which carries it out in etcd.

use super::super::controls::Control;
use super::super::error::RolloutError;
use super::record::LocalAbort;
use super::sum::Sum;
use crate::reload::Caller;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a control waits for etcd's answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// The fleet as last seen.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The last round reached etcd.
    pub connected: bool,
    /// When the last round that reached etcd ended.
    pub round_at: Option<String>,
    /// The gateway holding the driver's key.
    pub driver: Option<String>,
    /// This process holds it, under its own lease (a process started again with the same
    /// `gateway_id` does not drive while the lease of the one before holds the key).
    pub driving: bool,
    /// The live gateways (their leases hold), this one included.
    pub gateways: Vec<String>,
    /// Per route: the fleet's window of its current step, as last summed.
    pub sums: BTreeMap<String, Sum>,
    /// This gateway's own local aborts, by route, until the fleet moves past them.
    pub local_aborts: BTreeMap<String, LocalAbort>,
}

/// A control made on this gateway, for the fleet service to carry out.
pub struct ControlRequest {
    pub route: String,
    pub control: Control,
    pub caller: Caller,
    pub reply: oneshot::Sender<Result<(), RolloutError>>,
}

pub struct FleetView {
    pub gateway_id: String,
    seen: Mutex<Seen>,
    controls: mpsc::UnboundedSender<ControlRequest>,
    /// Taken once by the fleet service.
    requests: Mutex<Option<mpsc::UnboundedReceiver<ControlRequest>>>,
}

impl FleetView {
    pub fn new(gateway_id: &str) -> Arc<FleetView> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(FleetView {
            gateway_id: gateway_id.to_string(),
            seen: Mutex::new(Seen::default()),
            controls: tx,
            requests: Mutex::new(Some(rx)),
        })
    }

    /// The controls made on this gateway, for the fleet service (once).
    pub fn take_controls(&self) -> Option<mpsc::UnboundedReceiver<ControlRequest>> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this gateway drives the fleet's rollouts.
    pub fn driving(&self) -> bool {
        self.seen().driving
    }

    /// Carries out `control` on `route`'s rollout in etcd (a compare-and-swap of its state,
    /// through the fleet service); `Ok` once written.
    pub async fn control(
        &self,
        route: &str,
        control: Control,
        caller: Caller,
    ) -> Result<(), RolloutError> {
        let (reply, answer) = oneshot::channel();
        let request = ControlRequest {
            route: route.to_string(),
            control,
            caller,
            reply,
        };
        let gone = || RolloutError::Unavailable("the fleet service is not running".into());
        self.controls.send(request).map_err(|_| gone())?;
        match tokio::time::timeout(CONTROL_TIMEOUT, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(RolloutError::Unavailable(format!(
                "etcd did not answer within {CONTROL_TIMEOUT:?}; the control may still be written: look again with `dyegate rollout {route}`"
            ))),
        }
    }

    /// The fleet's part of `route`'s status: who drives, the live gateways and each one's part
    /// of the window the gates judge, and this gateway's own local abort.
    pub fn route_json(&self, route: &str) -> Value {
        let seen = self.seen();
        let windows = seen.sums.get(route).map(|s| s.gateways.clone());
        json!({
            "gateway_id": self.gateway_id,
            "connected": seen.connected,
            "last_round": seen.round_at,
            "driver": seen.driver,
            "driving": seen.driving,
            "live_gateways": seen.gateways,
            "windows": windows.unwrap_or_default(),
            "local_abort": seen.local_aborts.get(route),
        })
    }
}
