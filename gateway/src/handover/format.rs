//! The handover state as it is written: one JSON document with a format number. A binary reads
//! only its own format; anything else (an older or newer format, a damaged file) is refused
//! with the reason, and the new process starts fresh with a warning, never crashes. Unknown
//! fields are ignored, so a field added within a format is read as absent by older readers.

use super::counters::Counters;
use crate::health::TargetRecord;
use crate::rollout::hooks::outbox::QueueRecord;
use crate::telemetry::window::SecondRecord;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// The format this binary writes and reads.
pub const FORMAT: u32 = 1;

/// Everything a process hands to its successor besides the listening sockets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub format: u32,
    /// The process that wrote it (checked alive by the reader: a stale file is not taken).
    pub from_pid: u32,
    pub written_at: String,
    /// An upgrade (to a new binary) or a revert (back to the old one).
    pub kind: HandoverKind,
    /// Why a revert happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub lineage: Lineage,
    /// The old process watches the new one this long after the handover (`upgrade.watch_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_ms: Option<u64>,
    /// Session ticket keys the process made (no key files), the encrypting one first.
    #[serde(default)]
    pub ticket_keys: Vec<TicketKeyRecord>,
    /// When it was written, milliseconds since the epoch (times below are relative to it).
    #[serde(default)]
    pub written_unix_ms: u64,
    /// Every counter and histogram sample it served (non-zero).
    #[serde(default)]
    pub counters: Counters,
    /// Per-target health and outlier state, by address.
    #[serde(default)]
    pub health: Vec<(SocketAddr, TargetRecord)>,
    /// The addresses of the table's DNS names.
    #[serde(default)]
    pub dns: Vec<(String, Vec<IpAddr>)>,
    /// The rollouts' windows: (route, group, its last seconds).
    #[serde(default)]
    pub windows: Vec<(String, String, Vec<SecondRecord>)>,
    /// The rollout events not delivered yet, per route, with each route's event count.
    #[serde(default)]
    pub events: Vec<QueueRecord>,
    /// The mirrored copies' answers per (route, group), for a rollout's shadow stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow_tally: Vec<crate::mirror::tally::PairSeconds>,
}

/// What the old process counted after it wrote its state (requests it still answered while it
/// drained), handed on when it exits: `state_dir/handover-final-<from_pid>.json`, taken by the
/// process `to_pid` (the one serving then).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Final {
    pub format: u32,
    pub from_pid: u32,
    pub to_pid: u32,
    pub counters: Counters,
}

/// How many handovers a state has lived through, and when each happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lineage {
    /// 0 for a process started fresh; one more at every upgrade or revert.
    pub generation: u64,
    /// When the first process of the lineage started.
    pub started_at: String,
    /// The latest handovers, oldest first (at most [`MAX_HANDOVERS`]).
    pub handovers: Vec<HandoverRecord>,
}

/// How many handovers a lineage remembers.
pub const MAX_HANDOVERS: usize = 20;

/// One handover: from which process, to which, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HandoverRecord {
    pub at: String,
    pub kind: HandoverKind,
    pub from_pid: u32,
    pub to_pid: u32,
    /// Why a revert happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HandoverKind {
    /// `dyegate upgrade`: a new binary took over.
    #[default]
    Upgrade,
    /// The new binary failed its watch: the old binary took the sockets back.
    Revert,
}

/// A ticket key's material (hex) and when it started encrypting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TicketKeyRecord {
    pub material: String,
    pub since: u64,
}

impl Lineage {
    /// The lineage of a process started fresh.
    pub fn fresh(now: String) -> Lineage {
        Lineage {
            generation: 0,
            started_at: now,
            handovers: Vec::new(),
        }
    }

    /// The lineage after one more handover.
    pub fn next(&self, record: HandoverRecord) -> Lineage {
        let mut handovers = self.handovers.clone();
        handovers.push(record);
        let extra = handovers.len().saturating_sub(MAX_HANDOVERS);
        handovers.drain(..extra);
        Lineage {
            generation: self.generation + 1,
            started_at: self.started_at.clone(),
            handovers,
        }
    }
}

/// Reads a state of this binary's format; `Err`: why it cannot be used.
pub fn decode(bytes: &[u8]) -> Result<State, String> {
    #[derive(Deserialize)]
    struct Head {
        format: Option<u32>,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| format!("unreadable ({e})"))?;
    match head.format {
        Some(FORMAT) => {}
        Some(other) => return Err(format!("format {other}, this binary reads format {FORMAT}")),
        None => return Err("no format number".into()),
    }
    serde_json::from_slice(bytes).map_err(|e| format!("unreadable as format {FORMAT} ({e})"))
}

pub fn encode(state: &State) -> Vec<u8> {
    serde_json::to_vec(state).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            format: FORMAT,
            from_pid: 42,
            written_at: "2026-01-01T00:00:00Z".into(),
            kind: HandoverKind::Upgrade,
            reason: None,
            lineage: Lineage::fresh("2025-12-31T00:00:00Z".into()),
            watch_ms: Some(10_000),
            ticket_keys: vec![TicketKeyRecord {
                material: "00ff".into(),
                since: 7,
            }],
            ..State::default()
        }
    }

    #[test]
    fn a_state_reads_back_and_other_formats_are_refused_with_the_reason() {
        let s = state();
        assert_eq!(decode(&encode(&s)), Ok(s));
        assert_eq!(
            decode(br#"{"format": 2, "from_pid": 1}"#),
            Err("format 2, this binary reads format 1".into())
        );
        assert_eq!(
            decode(br#"{"from_pid": 1}"#),
            Err("no format number".into())
        );
        assert!(decode(b"{\"format\": 1")
            .err()
            .is_some_and(|e| e.starts_with("unreadable (")));
        assert!(decode(br#"{"format": 1, "from_pid": "x"}"#)
            .err()
            .is_some_and(|e| e.starts_with("unreadable as format 1 (")));
        // A field a later build of format 1 adds is ignored.
        let mut text = String::from_utf8(encode(&state())).expect("utf-8");
        text.insert_str(1, "\"later\": [1, 2],");
        assert_eq!(decode(text.as_bytes()), Ok(state()));
    }

    #[test]
    fn the_lineage_counts_handovers_and_keeps_the_latest() {
        let mut l = Lineage::fresh("t0".into());
        for i in 0..(MAX_HANDOVERS as u32 + 5) {
            l = l.next(HandoverRecord {
                at: format!("t{i}"),
                kind: HandoverKind::Upgrade,
                from_pid: i,
                to_pid: i + 1,
                reason: None,
            });
        }
        assert_eq!(l.generation, MAX_HANDOVERS as u64 + 5);
        assert_eq!(l.handovers.len(), MAX_HANDOVERS);
        assert_eq!(l.handovers[0].from_pid, 5);
        assert_eq!(l.started_at, "t0");
    }
}
