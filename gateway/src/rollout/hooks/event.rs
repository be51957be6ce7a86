//! A rollout's transition as the events hook receives it: a CloudEvents 1.0 envelope in JSON
//! (structured mode), `type` `dev.dyegate.rollout.<kind>`, the rollout's move in `data`. Pure.

use crate::rollout::state::{Move, Phase};
use serde_json::{json, Value};

/// What a move is, for the event's type: `started`, `step`, `resumed`, `progressing`,
/// `waiting_for_traffic`, `paused`, `awaiting_approval`, `awaiting_confirmation`, `succeeded`,
/// `failed`, `aborted` (and `gate_breached`, see [`breach`]).
pub fn kind(before: Option<&Move>, now: &Move) -> &'static str {
    match now.state {
        Phase::Pending => "started",
        Phase::Progressing => match before {
            Some(b) if b.step != now.step => "step",
            Some(b) if b.state == Phase::Paused => "resumed",
            None => "step",
            Some(_) => "progressing",
        },
        other => other.as_str(),
    }
}

/// The envelope: `id` unique per gateway process, `sequence` counting the route's events from
/// 1 (a receiver can check the order and see a gap), `data` the move.
pub fn envelope(route: &str, sequence: u64, kind: &str, time: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": format!("{route}-{}-{sequence}", process_start_ms()),
        "source": format!("/dyegate/rollouts/{route}"),
        "type": format!("dev.dyegate.rollout.{kind}"),
        "subject": route,
        "time": time,
        "datacontenttype": "application/json",
        "sequence": sequence.to_string(),
        "data": data,
    })
}

/// The data of a move of `route`'s rollout (canary `canary`, plan `plan`).
pub fn move_data(
    route: &str,
    canary: &str,
    plan: &str,
    before: Option<&Move>,
    now: &Move,
) -> Value {
    json!({
        "route": route,
        "canary": canary,
        "plan": plan,
        "state": now.state.as_str(),
        "previous_state": before.map(|b| b.state.as_str()),
        "step": now.step,
        "previous_step": before.map(|b| b.step),
        "canary_share": now.share,
        "by": now.by.as_str(),
        "reason": now.reason,
        "at": now.at,
    })
}

/// The data of a breach the gates found (before the move it causes): the gate and why.
pub fn breach(route: &str, canary: &str, plan: &str, gate: &str, why: &str, step: usize) -> Value {
    json!({
        "route": route,
        "canary": canary,
        "plan": plan,
        "gate": gate,
        "reason": why,
        "step": step,
    })
}

/// When this process started (Unix milliseconds): makes `id` unique across restarts.
fn process_start_ms() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(crate::rollout::state::now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::state::MovedBy;

    fn mv(state: Phase, step: usize) -> Move {
        Move {
            at: "t".into(),
            state,
            step,
            share: 10,
            by: MovedBy::Rollout,
            reason: None,
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(kind(None, &mv(Phase::Pending, 0)), "started");
        let p = mv(Phase::Progressing, 1);
        assert_eq!(kind(Some(&mv(Phase::Pending, 0)), &p), "step");
        assert_eq!(kind(Some(&mv(Phase::Paused, 1)), &p), "resumed");
        assert_eq!(
            kind(Some(&mv(Phase::WaitingForTraffic, 1)), &p),
            "progressing"
        );
        assert_eq!(
            kind(Some(&p), &mv(Phase::AwaitingConfirmation, 1)),
            "awaiting_confirmation"
        );
        assert_eq!(kind(Some(&p), &mv(Phase::Failed, 0)), "failed");
    }

    #[test]
    fn a_cloudevents_envelope() {
        let e = envelope(
            "shop",
            3,
            "step",
            "2024-01-01T00:00:00Z",
            json!({"step": 2}),
        );
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["type"], "dev.dyegate.rollout.step");
        assert_eq!(e["source"], "/dyegate/rollouts/shop");
        assert_eq!(e["sequence"], "3");
        assert!(e["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("shop-") && id.ends_with("-3")));
        assert_eq!(e["data"]["step"], 2);
    }
}
