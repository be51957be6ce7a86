//! Reading and writing routing tables in etcd, for the gateway's source and the fleet commands.
//! The layout is in [`super::layout`].

use super::layout::{self, generation_dir, Current, EmptyTable, Entry, CURRENT, TABLES};
use crate::config::load::not_utf8;
use crate::config::ConfigErrors;
use crate::config::EtcdSettings;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Txn, TxnOp,
};
use std::time::Duration;

/// Operations per transaction, under etcd's default `--max-txn-ops` (128).
const MAX_OPS: usize = 120;
/// Bytes of keys and values per transaction, under etcd's default `--max-request-bytes` (1.5 MiB).
const MAX_BYTES: usize = 1024 * 1024;
/// Keys per page when reading a table.
const PAGE: i64 = 500;
/// Largest answer accepted from etcd: a page of keys, or one watch answer (the switch to a new
/// table deletes every key of the old one in one revision: about 100 bytes an entry).
pub const MAX_ANSWER: usize = 256 * 1024 * 1024;
/// Longest single request (a large table is read in pages and written in batches).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A table as stored at one revision.
#[derive(Debug, Clone)]
pub struct Table {
    /// The revision the table last changed at: the routing version of the fleet.
    pub revision: u64,
    /// The store's revision when it was read (watch from here + 1).
    pub read_revision: u64,
    /// `current`'s mod revision (the compare-and-swap of the next write).
    pub current_mod: i64,
    /// `current`'s value as stored (checked by [`Table::current`]).
    pub current: String,
    /// The generation it names (its keys are `kvs`).
    pub generation: String,
    /// (full key, value), in key order.
    pub kvs: Vec<(String, String)>,
    /// Values that are not UTF-8 text, each an error located at its key (`kvs` holds them with
    /// the bad bytes replaced, never served: [`Table::assemble`] refuses the table).
    pub not_text: Vec<crate::config::ConfigError>,
    /// The steps of the fleet's rollouts at the same revision, set over the table by every
    /// gateway (see `rollout::fleet::weights`).
    pub steps: crate::rollout::FleetSteps,
}

impl Table {
    pub fn dir(&self, prefix: &str) -> String {
        generation_dir(prefix, &self.generation)
    }

    /// `current`'s value, checked; an error is located at `current`.
    pub fn current(&self, prefix: &str) -> Result<Current, ConfigErrors> {
        Current::parse(&format!("{prefix}{CURRENT}"), &self.current)
            .map_err(|e| ConfigErrors(vec![e]))
    }

    /// The table as routes.yaml text, and where each key's lines went (`current`'s value
    /// checked first).
    pub fn assemble(&self, prefix: &str) -> Result<layout::Assembled, ConfigErrors> {
        self.current(prefix)?;
        if !self.not_text.is_empty() {
            return Err(ConfigErrors(self.not_text.clone()));
        }
        layout::assemble(&self.dir(prefix), self.kvs.clone())
    }

    /// Whether the assembled table may replace one of `running_routes` routes (`None`: at
    /// startup): see [`layout::Assembled::admit`].
    pub fn admit(
        &self,
        prefix: &str,
        assembled: &layout::Assembled,
        running_routes: Option<usize>,
    ) -> Result<(), ConfigErrors> {
        let current = self.current(prefix)?;
        assembled
            .admit(&format!("{prefix}{CURRENT}"), &current, running_routes)
            .map_err(|e| ConfigErrors(vec![e]))
    }
}

/// Why a read or write failed.
#[derive(Debug)]
pub enum StoreError {
    /// The revision asked for is compacted away.
    Compacted(String),
    /// The table changed since it was read (another push won).
    Conflict(String),
    /// Unreachable, refused, timed out, denied...
    Etcd(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Compacted(m) | StoreError::Conflict(m) | StoreError::Etcd(m) => {
                f.write_str(m)
            }
        }
    }
}

pub(crate) fn etcd_error(what: &str, e: etcd_client::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("compacted") {
        StoreError::Compacted(format!("{what}: {text}"))
    } else {
        StoreError::Etcd(format!("{what}: {text}"))
    }
}

/// Connects to the cluster (the dial timeout bounds each endpoint's connect).
pub async fn connect(s: &EtcdSettings) -> Result<Client, StoreError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(s.dial_timeout)
        .with_timeout(REQUEST_TIMEOUT)
        // A watch on a dead member must fail, not hang: HTTP/2 pings on the idle stream.
        .with_keep_alive(
            Duration::from_secs(2),
            s.dial_timeout.max(Duration::from_secs(1)),
        );
    if let Some((user, password)) = &s.user {
        options = options.with_user(user.clone(), password.clone());
    }
    let endpoints = s.endpoints.join(", ");
    let client = tokio::time::timeout(
        s.dial_timeout + Duration::from_millis(500),
        Client::connect(&s.endpoints, Some(options)),
    )
    .await
    .map_err(|_| {
        StoreError::Etcd(format!(
            "etcd {endpoints}: no answer within the dial timeout"
        ))
    })?
    .map_err(|e| etcd_error(&format!("etcd {endpoints}"), e))?;
    Ok(client)
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every (key, value, mod revision) under `dir` at `revision` (0: the latest), page by page.
pub(crate) async fn range(
    client: &mut Client,
    dir: &str,
    revision: i64,
) -> Result<Vec<(String, Vec<u8>, i64)>, StoreError> {
    let end = prefix_end(dir);
    let mut from = dir.as_bytes().to_vec();
    let mut out = Vec::new();
    // A page of large entries can pass tonic's default 4 MiB answer limit.
    let mut kv = client.kv_client().max_decoding_message_size(MAX_ANSWER);
    loop {
        let opts = GetOptions::new()
            .with_range(end.clone())
            .with_limit(PAGE)
            .with_revision(revision);
        let resp = (kv.get(from.clone(), Some(opts)).await)
            .map_err(|e| etcd_error(&format!("reading {dir}"), e))?;
        for kv in resp.kvs() {
            out.push((utf8(kv.key()), kv.value().to_vec(), kv.mod_revision()));
        }
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => return Ok(out),
        }
    }
}

/// The first key after every key starting with `prefix`.
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Reads the fleet's table at `revision` (`None`: the latest). `Ok(None)`: no table yet.
pub async fn read(
    client: &mut Client,
    prefix: &str,
    revision: Option<u64>,
) -> Result<Option<Table>, StoreError> {
    let current_key = format!("{prefix}{CURRENT}");
    let opts = GetOptions::new().with_revision(revision.map_or(0, |r| r as i64));
    let resp = (client.get(current_key.clone(), Some(opts)).await)
        .map_err(|e| etcd_error(&format!("reading {current_key}"), e))?;
    let read_revision = resp.header().map_or(0, |h| h.revision()) as u64;
    let Some(kv) = resp.kvs().first() else {
        return Ok(None);
    };
    let current = utf8(kv.value());
    let generation = layout::generation_of(&current).to_string();
    let current_mod = kv.mod_revision();
    let at = revision.unwrap_or(read_revision) as i64;
    let dir = generation_dir(prefix, &generation);
    let kvs = range(client, &dir, at).await?;
    let steps = crate::rollout::fleet::store::steps(client, prefix, at).await?;
    let revision = kvs
        .iter()
        .map(|(_, _, m)| *m)
        .chain([current_mod])
        .max()
        .unwrap_or(0) as u64;
    let mut not_text = Vec::new();
    let kvs = (kvs.into_iter())
        .map(|(k, v, _)| {
            if let Err(e) = std::str::from_utf8(&v) {
                not_text.push(not_utf8(format!("etcd:{k}"), &v, e));
            }
            (k, utf8(&v))
        })
        .collect();
    Ok(Some(Table {
        revision,
        read_revision: read_revision.max(at as u64),
        current_mod,
        current,
        generation,
        kvs,
        not_text,
        steps,
    }))
}

/// What a write expects to replace: `current`'s mod revision as read (0: no table yet) and the
/// generation it named.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub current_mod: i64,
    pub generation: Option<String>,
    /// The store revision of the read: the old generation's keys must not have changed since.
    pub read_revision: u64,
}

/// Writes `entries` as a new generation and makes it current, marked `allow-empty` when
/// `empty` says so, if the table is still what was read (`expect`). Returns the revision the
/// table changed at. A table that fits etcd's request limits is written in one transaction; a
/// larger one is written in batches first (invisible: nothing points at it) and switched to by
/// the final one. On a conflict the batches are removed.
pub async fn write(
    client: &mut Client,
    prefix: &str,
    entries: &[Entry],
    empty: EmptyTable,
    expect: &Expect,
) -> Result<u64, StoreError> {
    let current = Current {
        generation: new_generation(expect.read_revision),
        keys: Some(entries.len()),
        empty,
    };
    let generation = &current.generation;
    let dir = generation_dir(prefix, generation);
    let current_key = format!("{prefix}{CURRENT}");
    let puts: Vec<(String, &str)> = entries
        .iter()
        .map(|e| (format!("{dir}{}", e.key), e.value.as_str()))
        .collect();
    if let Some((k, v)) = puts.iter().find(|(k, v)| k.len() + v.len() > MAX_BYTES) {
        return Err(StoreError::Etcd(format!(
            "{k}: {} bytes, more than one etcd request takes ({MAX_BYTES})",
            k.len() + v.len()
        )));
    }
    let batches = batches(&puts);
    let (staged, last) = batches.split_at(batches.len().saturating_sub(1));
    for batch in staged {
        let ops: Vec<TxnOp> = batch
            .iter()
            .map(|(k, v)| TxnOp::put(k.as_str(), *v, None))
            .collect();
        (client.txn(Txn::new().and_then(ops)).await)
            .map_err(|e| etcd_error(&format!("writing {dir}"), e))?;
    }
    let mut compares = vec![if expect.current_mod == 0 {
        Compare::version(current_key.clone(), CompareOp::Equal, 0)
    } else {
        Compare::mod_revision(current_key.clone(), CompareOp::Equal, expect.current_mod)
    }];
    if let Some(old) = &expect.generation {
        // An edit made inside the served generation (etcdctl) is a change too.
        let old_dir = generation_dir(prefix, old);
        compares.push(
            Compare::mod_revision(
                old_dir.as_str(),
                CompareOp::Less,
                expect.read_revision as i64 + 1,
            )
            .with_range(prefix_end(&old_dir)),
        );
    }
    let mut ops: Vec<TxnOp> = (last.first().into_iter().flatten())
        .map(|(k, v)| TxnOp::put(k.as_str(), *v, None))
        .collect();
    ops.push(TxnOp::put(current_key.as_str(), current.value(), None));
    // Every other generation goes: the old one, and batches of pushes that lost or died.
    let tables = format!("{prefix}{TABLES}");
    ops.push(TxnOp::delete(
        tables.as_str(),
        Some(DeleteOptions::new().with_range(dir.as_str())),
    ));
    ops.push(TxnOp::delete(
        prefix_end(&dir),
        Some(DeleteOptions::new().with_range(prefix_end(&tables))),
    ));
    let resp = (client.txn(Txn::new().when(compares).and_then(ops)).await)
        .map_err(|e| etcd_error("switching to the new table", e))?;
    if resp.succeeded() {
        return Ok(resp.header().map_or(0, |h| h.revision()) as u64);
    }
    if !staged.is_empty() {
        let _ = client
            .delete(dir.as_str(), Some(DeleteOptions::new().with_prefix()))
            .await;
    }
    Err(StoreError::Conflict(format!(
        "the fleet's table changed after revision {} was read (another push or an edit won); nothing was written: pull or diff against etcd: and push again",
        expect.read_revision
    )))
}

/// Puts grouped into transactions within etcd's limits, leaving room in the last one for the
/// switch (one put and two deletes).
fn batches<'a>(puts: &'a [(String, &'a str)]) -> Vec<Vec<(String, &'a str)>> {
    let mut out: Vec<Vec<(String, &str)>> = vec![Vec::new()];
    let mut bytes = 0;
    for (k, v) in puts {
        let size = k.len() + v.len() + 16;
        let full = out
            .last()
            .is_some_and(|b| b.len() + 3 >= MAX_OPS || bytes + size > MAX_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(b) = out.last_mut() {
            b.push((k.clone(), *v));
        }
    }
    out
}

/// A name for a new generation: the revision it is based on, and enough randomness that two
/// concurrent writers never share one.
fn new_generation(base: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{base}-{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stay_under_the_default_limits() {
        let value = "x".repeat(300);
        let puts: Vec<(String, &str)> = (0..10_000)
            .map(|i| (format!("/p/tables/g/routes/{i:06}"), value.as_str()))
            .collect();
        let b = batches(&puts);
        assert!(b.len() > 1);
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 10_000);
        for batch in &b {
            assert!(batch.len() + 3 <= MAX_OPS);
            let bytes: usize = batch.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert!(bytes <= MAX_BYTES);
        }
        assert_eq!(batches(&puts[..5]).len(), 1);
    }

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
    }
}
