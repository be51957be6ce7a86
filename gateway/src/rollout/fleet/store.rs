//! The fleet's rollout keys in etcd (see [`keys`](super::keys)): read in one range, the moves
//! written by compare-and-swap (a driver's fenced by its key and lease), each gateway's window
//! and presence put under its lease.

use super::super::state::RolloutState;
use super::keys::{self, Key};
use super::moves::Written;
use super::record::{FiguresRecord, Presence, StepRecord};
use super::weights::{FleetStep, FleetSteps};
use crate::source::store::{etcd_error, prefix_end, range, StoreError};
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn,
    TxnOp, TxnOpResponse,
};
use log::warn;
use std::collections::BTreeMap;
use std::time::Duration;

/// One route's keys as read.
#[derive(Debug, Default)]
pub struct RouteKeys {
    pub state: Option<RolloutState>,
    /// The state key's mod revision (0: none): what the next move compares with.
    pub state_mod: i64,
    pub step: Option<FleetStep>,
    pub figures: Vec<FiguresRecord>,
}

/// Everything under `PREFIX/rollouts/` at one revision.
#[derive(Debug, Default)]
pub struct Listing {
    /// The driver's id and lease.
    pub driver: Option<(String, i64)>,
    /// The live gateways.
    pub gateways: Vec<String>,
    pub routes: BTreeMap<String, RouteKeys>,
}

fn decoded<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            warn!("etcd: {key}: not a value dyegate wrote ({e}); ignored");
            None
        }
    }
}

/// Reads every rollout key of the fleet (`revision` 0: the latest).
pub async fn list(client: &mut Client, prefix: &str) -> Result<Listing, StoreError> {
    let mut listing = Listing::default();
    let dir = keys::dir(prefix);
    let mut kv = client.kv_client();
    let options = etcd_client::GetOptions::new().with_prefix();
    let resp = (kv.get(dir.as_str(), Some(options)).await)
        .map_err(|e| etcd_error(&format!("reading {dir}"), e))?;
    for kv in resp.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let Some(parsed) = keys::parse(prefix, &key) else {
            continue;
        };
        let value = kv.value();
        match parsed {
            Key::Driver => {
                let id = String::from_utf8_lossy(value).into_owned();
                listing.driver = Some((id, kv.lease()));
            }
            Key::Gateway(id) => listing.gateways.push(id),
            Key::State(route) => {
                let r = listing.routes.entry(route).or_default();
                r.state = decoded(&key, value);
                r.state_mod = kv.mod_revision();
            }
            Key::Step(route) => {
                if let Some(record) = decoded::<StepRecord>(&key, value) {
                    let step = FleetStep {
                        route: route.clone(),
                        revision: kv.mod_revision().max(0) as u64,
                        record,
                    };
                    listing.routes.entry(route).or_default().step = Some(step);
                }
            }
            Key::Figures { route, .. } => {
                if let Some(f) = decoded(&key, value) {
                    listing.routes.entry(route).or_default().figures.push(f);
                }
            }
        }
    }
    Ok(listing)
}

/// The steps of the fleet's rollouts at `revision` (read with the table, at its revision).
pub async fn steps(
    client: &mut Client,
    prefix: &str,
    revision: i64,
) -> Result<FleetSteps, StoreError> {
    let dir = keys::dir(prefix);
    let mut out = Vec::new();
    for (key, value, mod_revision) in range(client, &dir, revision).await? {
        let Some(Key::Step(route)) = keys::parse(prefix, &key) else {
            continue;
        };
        if let Some(record) = decoded(&key, &value) {
            out.push(FleetStep {
                route,
                revision: mod_revision.max(0) as u64,
                record,
            });
        }
    }
    Ok(FleetSteps(out))
}

/// Reads one route's state and its mod revision (0: none).
pub async fn state(
    client: &mut Client,
    prefix: &str,
    route: &str,
) -> Result<(Option<RolloutState>, i64), StoreError> {
    let key = keys::state(prefix, route);
    let resp = (client.get(key.as_str(), None).await)
        .map_err(|e| etcd_error(&format!("reading {key}"), e))?;
    Ok(match resp.kvs().first() {
        Some(kv) => (decoded(&key, kv.value()), kv.mod_revision()),
        None => (None, 0),
    })
}

/// Writes a move of `route`'s rollout if its state is still at mod revision `expect` (0: no
/// state yet): the state, and the step's record when the move changes the weights, in one
/// transaction. `fence` (a driver's id and lease): only while it holds the driver's key.
/// `Ok(Some(revision))`: written; `Ok(None)`: something else came first.
pub async fn write_move(
    client: &mut Client,
    prefix: &str,
    route: &str,
    expect: i64,
    written: &Written,
    fence: Option<(&str, i64)>,
) -> Result<Option<u64>, StoreError> {
    let state_key = keys::state(prefix, route);
    let mut compares = vec![match expect {
        0 => Compare::version(state_key.as_str(), CompareOp::Equal, 0),
        m => Compare::mod_revision(state_key.as_str(), CompareOp::Equal, m),
    }];
    if let Some((id, lease)) = fence {
        let driver = keys::driver(prefix);
        compares.push(Compare::value(driver.as_str(), CompareOp::Equal, id));
        compares.push(Compare::lease(driver.as_str(), CompareOp::Equal, lease));
    }
    let state = serde_json::to_string(&written.state).unwrap_or_default();
    let mut ops = vec![TxnOp::put(state_key.as_str(), state, None)];
    if let Some(step) = &written.step {
        let step_json = serde_json::to_string(step).unwrap_or_default();
        ops.push(TxnOp::put(keys::step(prefix, route), step_json, None));
    }
    let resp = (client.txn(Txn::new().when(compares).and_then(ops)).await)
        .map_err(|e| etcd_error(&format!("writing {state_key}"), e))?;
    Ok(resp
        .succeeded()
        .then(|| resp.header().map_or(0, |h| h.revision()) as u64))
}

/// Takes the driver's key for `id` under `lease` if nobody holds it; the driver after.
pub async fn campaign(
    client: &mut Client,
    prefix: &str,
    id: &str,
    lease: i64,
) -> Result<Option<(String, i64)>, StoreError> {
    let key = keys::driver(prefix);
    let txn = Txn::new()
        .when([Compare::version(key.as_str(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key.as_str(),
            id,
            Some(PutOptions::new().with_lease(lease)),
        )])
        .or_else([TxnOp::get(key.as_str(), None)]);
    let resp =
        (client.txn(txn).await).map_err(|e| etcd_error(&format!("campaigning for {key}"), e))?;
    if resp.succeeded() {
        return Ok(Some((id.to_string(), lease)));
    }
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(g) = op {
            if let Some(kv) = g.kvs().first() {
                return Ok(Some((
                    String::from_utf8_lossy(kv.value()).into_owned(),
                    kv.lease(),
                )));
            }
        }
    }
    Ok(None)
}

/// Puts `record` at `key`, bound to `lease` (gone when the lease is).
pub async fn put_leased<T: serde::Serialize>(
    client: &mut Client,
    key: &str,
    record: &T,
    lease: i64,
) -> Result<(), StoreError> {
    let value = serde_json::to_string(record).unwrap_or_default();
    (client
        .put(key, value, Some(PutOptions::new().with_lease(lease)))
        .await)
        .map_err(|e| etcd_error(&format!("writing {key}"), e))?;
    Ok(())
}

/// Says this gateway is live, under its lease.
pub async fn present(
    client: &mut Client,
    prefix: &str,
    id: &str,
    lease: i64,
) -> Result<(), StoreError> {
    let record = Presence {
        gateway: id.to_string(),
        since: crate::stamp::now_rfc3339(),
    };
    put_leased(client, &keys::gateway(prefix, id), &record, lease).await
}

/// Removes every key of `route`'s rollout (a push that removed the route or changed its
/// `split` or `rollout`: the rollout starts again from the new table).
/// Returns how many keys went.
pub async fn forget_route(
    client: &mut Client,
    prefix: &str,
    route: &str,
) -> Result<i64, StoreError> {
    let dir = keys::route_dir(prefix, route);
    let options = DeleteOptions::new().with_range(prefix_end(&dir));
    let resp = (client.delete(dir.as_str(), Some(options)).await)
        .map_err(|e| etcd_error(&format!("removing {dir}"), e))?;
    Ok(resp.deleted())
}

/// A lease kept alive by this gateway.
pub struct Lease {
    pub id: i64,
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
}

impl Lease {
    /// Grants a lease of `ttl`.
    pub async fn grant(client: &mut Client, ttl: Duration) -> Result<Lease, StoreError> {
        let granted = (client.lease_grant(ttl.as_secs().max(1) as i64, None).await)
            .map_err(|e| etcd_error("granting a lease", e))?;
        Self::keep(client, granted.id()).await
    }

    /// Keeps lease `id` alive from now on (one granted before a reconnect).
    pub async fn keep(client: &mut Client, id: i64) -> Result<Lease, StoreError> {
        let (keeper, stream) = (client.lease_keep_alive(id).await)
            .map_err(|e| etcd_error("keeping a lease alive", e))?;
        Ok(Lease { id, keeper, stream })
    }

    /// Renews the lease; `false` when etcd says it is gone (expired or revoked).
    pub async fn renew(&mut self) -> Result<bool, StoreError> {
        (self.keeper.keep_alive().await).map_err(|e| etcd_error("renewing the lease", e))?;
        match (self.stream.message().await).map_err(|e| etcd_error("renewing the lease", e))? {
            Some(r) => Ok(r.ttl() > 0),
            None => Err(StoreError::Etcd(
                "the lease's keep-alive stream ended".into(),
            )),
        }
    }

    /// Gives the lease up: every key under it goes (the driver's key, the windows, the
    /// presence), so that another gateway drives at once.
    pub async fn revoke(&self, client: &mut Client) -> Result<(), StoreError> {
        (client.lease_revoke(self.id).await).map_err(|e| etcd_error("revoking the lease", e))?;
        Ok(())
    }
}
