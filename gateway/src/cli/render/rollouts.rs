//! `dyegate rollout [status] [ROUTE]` and the controls' answers: each rollout's state, step and
//! canary share (set, in the table, in the file), its last evaluation (figures per group, each
//! gate's verdict) and its moves.

use super::{table, text, when};
use serde_json::Value;

/// A share in percent as JSON gives it (`20.0`, `33.33333`): `20%`, `33.33%`.
fn share(v: &Value) -> String {
    match v.as_f64() {
        None => "-".into(),
        Some(p) => {
            let t = format!("{p:.2}");
            format!("{}%", t.trim_end_matches('0').trim_end_matches('.'))
        }
    }
}

/// Every rollout (`GET /rollouts`): a summary table, then each one in full.
pub fn render_all(all: &Value, now_unix: u64) -> String {
    let list = all["rollouts"].as_array().map_or(&[][..], Vec::as_slice);
    if list.is_empty() {
        return "no rollouts (a route with a `rollout:` section starts one)\n".into();
    }
    let rows: Vec<Vec<String>> = (list.iter())
        .map(|r| {
            vec![
                text(&r["route"]),
                text(&r["state"]),
                step(r),
                share(&r["canary_share"]),
                text(&r["canary"]),
            ]
        })
        .collect();
    let mut out = table(&["ROUTE", "STATE", "STEP", "SHARE", "CANARY"], &rows);
    for r in list {
        out.push('\n');
        out.push_str(&render(r, now_unix));
    }
    out
}

/// `2 of 4`.
fn step(r: &Value) -> String {
    match r["steps"].as_array() {
        Some(steps) => format!("{} of {}", text(&r["step"]), steps.len()),
        None => text(&r["step"]),
    }
}

/// One rollout in full.
pub fn render(r: &Value, now_unix: u64) -> String {
    let steps: Vec<String> = (r["steps"].as_array().into_iter().flatten())
        .map(|s| format!("{}%", text(s)))
        .collect();
    let mut out = format!(
        "{}: {}, step {} (steps {}), canary {}\n",
        text(&r["route"]),
        text(&r["state"]),
        step(r),
        steps.join(", "),
        text(&r["canary"])
    );
    out.push_str(&format!(
        "canary share {} (in the table {}, in the file {}){}\n",
        share(&r["canary_share"]),
        share(&r["table_canary_share"]),
        share(&r["file_canary_share"]),
        if r["table_differs_from_file"] == true {
            ": the table's weights differ from the file's"
        } else {
            ""
        }
    ));
    if let Some(held) = r["held_weights"].as_array() {
        let w: Vec<String> = held.iter().map(text).collect();
        out.push_str(&format!(
            "held weights {} (a rollback's; kept until a control moves the rollout)\n",
            w.join(", ")
        ));
    }
    out.push_str(&format!(
        "since {}, moved by {}; a step lasts {} ms, judged on a window of {} ms\n",
        when(&text(&r["since"]), now_unix),
        text(&r["moved_by"]),
        text(&r["step_ms"]),
        text(&r["window_ms"])
    ));
    if let Some(plan) = r["plan"].as_str() {
        out.push_str(&format!(
            "plan {} (a hash of the route's split and rollout: an edit of either starts it again)\n",
            &plan[..plan.len().min(12)]
        ));
    }
    if let Some(stage) = r["shadow"].as_object() {
        out.push_str(&format!(
            "shadow stage before step 1: {} of the requests copied to the canary for {} ms{}\n",
            share(&stage["percent"]),
            text(&stage["duration_ms"]),
            if stage["mirroring"] == true {
                ", mirroring now (untagged share 0)"
            } else {
                ""
            }
        ));
    }
    out.push_str(&hooks(r, now_unix));
    if r["fleet"].is_object() {
        out.push_str(&fleet(&r["fleet"], now_unix));
    }
    match &r["last_evaluation"] {
        Value::Null => out.push_str("last evaluation: none yet\n"),
        e => out.push_str(&evaluation(e, now_unix)),
    }
    let moves: Vec<Vec<String>> = (r["history"].as_array().into_iter().flatten())
        .map(|m| {
            vec![
                format!("  {}", text(&m["at"])),
                text(&m["state"]),
                text(&m["step"]),
                format!("{}%", text(&m["share"])),
                text(&m["by"]),
                m.get("reason").map(text).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    if !moves.is_empty() {
        out.push_str("moves:\n");
        out.push_str(&table(
            &["  AT", "STATE", "STEP", "SHARE", "BY", "REASON"],
            &moves,
        ));
    }
    out
}

/// The hooks (when the plan has any), and the confirmation the rollout waits for.
fn hooks(r: &Value, now_unix: u64) -> String {
    let h = &r["hooks"];
    let mut out = String::new();
    if let Some(url) = h["confirm_step"].as_str() {
        out.push_str(&format!("confirm_step {url}\n"));
    }
    if let Some(url) = h["events"].as_str() {
        out.push_str(&format!(
            "events to {url}, {} waiting\n",
            text(&h["events_waiting"])
        ));
    }
    let c = &r["confirmation"];
    if c.is_object() {
        let last = match c["last_asked"].as_str() {
            Some(at) => format!(
                ", last {}: {}",
                when(at, now_unix),
                c["answer"].as_str().unwrap_or("-")
            ),
            None => String::new(),
        };
        out.push_str(&format!(
            "confirmation of step {}: asked {} time(s){last}; {}\n",
            text(&c["step"]),
            text(&c["asks"]),
            if c["confirmed"] == true {
                "confirmed, the step goes"
            } else {
                "the step waits (`dyegate rollout promote` goes without asking)"
            }
        ));
    }
    out
}

/// A fleet's rollout: who drives, the live gateways, each one's part of the judged window, and
/// this gateway's own abort while etcd was away.
fn fleet(f: &Value, now_unix: u64) -> String {
    let live: Vec<String> = (f["live_gateways"].as_array().into_iter().flatten())
        .map(text)
        .collect();
    let mut out = format!(
        "fleet: driven by {} (this gateway: {}{}), {} live gateway(s): {}; etcd {}\n",
        f["driver"].as_str().unwrap_or("nobody yet"),
        text(&f["gateway_id"]),
        if f["driving"] == true {
            ", the driver"
        } else {
            ""
        },
        live.len(),
        live.join(", "),
        if f["connected"] == true {
            "connected"
        } else {
            "out of reach: nothing promotes, this gateway judges its own window"
        }
    );
    if let Some(at) = f["last_round"].as_str() {
        out.push_str(&format!("last round with etcd {}\n", when(at, now_unix)));
    }
    let rows: Vec<Vec<String>> = (f["windows"].as_array().into_iter().flatten())
        .map(|w| {
            vec![
                format!("  {}", text(&w["gateway"])),
                text(&w["requests"]),
                share(&w["share"]),
                text(&w["canary_requests"]),
                text(&w["canary_errors"]),
                format!("{}..{}", text(&w["from"]), text(&w["to"])),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&table(
            &[
                "  GATEWAY",
                "REQUESTS",
                "SHARE",
                "CANARY",
                "CANARY ERRORS",
                "SECONDS",
            ],
            &rows,
        ));
    }
    out.push_str(&shadow_parts(f));
    let a = &f["local_abort"];
    if a.is_object() {
        out.push_str(&format!(
            "this gateway took the canary to 0 alone {} (version {}, on the step started at {} ms): {}\n",
            when(&text(&a["at"]), now_unix),
            text(&a["version"]),
            text(&a["step_started_ms"]),
            text(&a["reason"])
        ));
    }
    out
}

/// In a fleet's shadow stage: each gateway's part of the copies the stage is judged on.
fn shadow_parts(f: &Value) -> String {
    let rows: Vec<Vec<String>> = (f["windows"].as_array().into_iter().flatten())
        .filter(|w| w["shadow"].is_object())
        .map(|w| {
            let c = &w["shadow"];
            vec![
                format!("  {}", text(&w["gateway"])),
                text(&c["copies"]),
                text(&c["errors"]),
                format!("{} of {}", text(&c["mismatches"]), text(&c["compared"])),
                c["latency_ms"]
                    .as_u64()
                    .map_or("-".into(), |l| format!("{l} ms")),
            ]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let head = [
        "  GATEWAY",
        "COPIES",
        "COPY ERRORS",
        "MISMATCHES",
        "LATENCY",
    ];
    format!(
        "the canary's answers to each gateway's copies (the stage is judged on their sum):\n{}",
        table(&head, &rows)
    )
}

fn evaluation(e: &Value, now_unix: u64) -> String {
    let p = e["latency_percentile"].as_f64().map_or_else(
        || "p?".into(),
        |p| format!("p{}", share(&p.into()).trim_end_matches('%')),
    );
    let shadow = &e["shadow"];
    let mut out = format!(
        "last evaluation {}: window {} ms, at least {} canary {}: {}\n",
        when(&text(&e["at"]), now_unix),
        text(&e["window_ms"]),
        text(&e["min_requests"]),
        if shadow.is_object() {
            "answers to copies (the shadow stage)"
        } else {
            "requests"
        },
        if e["enough_traffic"] == true {
            "enough traffic, the gates count"
        } else {
            "not enough traffic yet, the gates do not count"
        }
    );
    let groups: Vec<Vec<String>> = (e["groups"].as_array().into_iter().flatten())
        .map(|g| {
            vec![
                format!(
                    "  {}{}",
                    text(&g["group"]),
                    if g["canary"] == true { " (canary)" } else { "" }
                ),
                text(&g["requests"]),
                text(&g["errors"]),
                text(&g["error_rate"]),
                g["latency_ms"]
                    .as_u64()
                    .map_or("-".into(), |l| format!("{l} ms")),
            ]
        })
        .collect();
    if shadow.is_object() {
        out.push_str(&format!(
            "  the canary's answers to copies: {} ended, {} failed, {} mismatches of {} compared\n",
            text(&shadow["copies"]),
            text(&shadow["errors"]),
            text(&shadow["mismatches"]),
            text(&shadow["compared"])
        ));
    }
    let latency = format!("{} LATENCY", p.to_uppercase());
    out.push_str(&table(
        &["  GROUP", "REQUESTS", "ERRORS", "ERROR RATE", &latency],
        &groups,
    ));
    let gates: Vec<Vec<String>> = (e["gates"].as_array().into_iter().flatten())
        .map(|g| {
            vec![
                format!("  {}", text(&g["gate"])),
                text(&g["value"]),
                text(&g["limit"]),
                if g["ok"] == true { "ok" } else { "breached" }.into(),
            ]
        })
        .collect();
    if !gates.is_empty() {
        out.push_str(&table(&["  GATE", "VALUE", "LIMIT", "VERDICT"], &gates));
    }
    out.push_str(&prometheus(e, now_unix));
    out
}

/// The Prometheus gates' last readings: value (or error), bounds, when, the query.
fn prometheus(e: &Value, now_unix: u64) -> String {
    let rows: Vec<Vec<String>> = (e["prometheus"].as_array().into_iter().flatten())
        .map(|g| {
            let bounds = match (g["min"].is_number(), g["max"].is_number()) {
                (true, true) => format!("{}..{}", text(&g["min"]), text(&g["max"])),
                (false, true) => format!("<= {}", text(&g["max"])),
                (true, false) => format!(">= {}", text(&g["min"])),
                (false, false) => "-".into(),
            };
            let verdict = match (g["fresh"] == true, g["ok"] == true, g["error"].as_str()) {
                (false, _, _) => "not evaluated on this step yet".to_string(),
                (true, _, Some(_)) => format!("error (on_error: {})", text(&g["on_error"])),
                (true, true, None) => "ok".into(),
                (true, false, None) => "breached".into(),
            };
            vec![
                format!("  {}", text(&g["gate"])),
                if g["value"].is_number() {
                    text(&g["value"])
                } else {
                    "-".into()
                },
                bounds,
                g["at"]
                    .as_str()
                    .map_or("never".into(), |at| when(at, now_unix)),
                verdict,
                text(&g["query"]),
            ]
        })
        .collect();
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    out.push_str(&table(
        &[
            "  PROMETHEUS GATE",
            "VALUE",
            "BOUNDS",
            "EVALUATED",
            "VERDICT",
            "QUERY",
        ],
        &rows,
    ));
    for g in e["prometheus"].as_array().into_iter().flatten() {
        if let Some(err) = g["error"].as_str() {
            out.push_str(&format!("  {}: {err}\n", text(&g["gate"])));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::facts::assert_all_shown;
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_714_558_320; // 2024-05-01T10:12:00Z

    fn shop() -> Value {
        json!({
            "route": "shop", "canary": "shop-canary", "state": "progressing", "step": 2, "steps": [5, 20, 50, 100],
            "canary_share": 20.0, "held_weights": null, "table_canary_share": 20.0, "file_canary_share": 0.0,
            "table_differs_from_file": true, "since": "2024-05-01T10:09:00.000Z", "moved_by": "rollout",
            "step_ms": 60000, "window_ms": 30000,
            "last_evaluation": { "at": "2024-05-01T10:11:59.000Z", "window_ms": 30000, "min_requests": 100,
                "latency_percentile": 99.0, "enough_traffic": true,
                "groups": [ { "group": "shop-stable", "canary": false, "requests": 9612, "errors": 3, "error_rate": 0.0003, "latency_ms": 50 },
                            { "group": "shop-canary", "canary": true, "requests": 2398, "errors": 1, "error_rate": 0.0004, "latency_ms": 75 } ],
                "gates": [ { "gate": "error_rate", "value": 0.0004, "limit": 0.02, "ok": true },
                           { "gate": "latency", "value": 75.0, "limit": 1200.0, "ok": true } ] },
            "history": [ { "at": "2024-05-01T10:08:00.000Z", "state": "progressing", "step": 1, "share": 5, "by": "rollout" },
                         { "at": "2024-05-01T10:09:00.000Z", "state": "progressing", "step": 2, "share": 20, "by": "control", "reason": "promoted by control" } ]
        })
    }

    #[test]
    fn a_rollout_states_every_fact() {
        let r = shop();
        let t = render(&r, NOW);
        // Shares and the percentile are shown as percentages (20.0 -> 20%, 99.0 -> p99).
        let skip = [
            "canary_share",
            "table_canary_share",
            "file_canary_share",
            "latency_percentile",
        ];
        assert_all_shown(&r, &t, &skip);
        assert!(
            t.contains(
                "canary share 20% (in the table 20%, in the file 0%): the table's weights differ"
            ),
            "{t}"
        );
        assert!(t.contains("P99 LATENCY"), "{t}");
        assert!(t.lines().count() < 20, "{t}");
    }

    #[test]
    fn a_fleet_s_rollout_shows_the_driver_and_each_gateway_s_part() {
        let mut r = shop();
        r["plan"] = json!("3f2a1b9c0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8");
        r["fleet"] = json!({
            "gateway_id": "gw2", "connected": true, "driver": "gw1", "driving": false,
            "last_round": "2024-05-01T10:11:59.500Z",
            "live_gateways": ["gw1", "gw2", "gw3"],
            "windows": [
                { "gateway": "gw1", "requests": 900, "share": 75.0, "canary_requests": 180, "canary_errors": 1, "from": 1_714_558_290_u64, "to": 1_714_558_320_u64 },
                { "gateway": "gw2", "requests": 300, "share": 25.0, "canary_requests": 60, "canary_errors": 0, "from": 1_714_558_290_u64, "to": 1_714_558_319_u64 }
            ],
            "local_abort": { "at": "2024-05-01T10:11:00.000Z", "step_started_ms": 1_714_558_200_000_u64, "version": "41.1",
                "reason": "gate error_rate breached: 0.3000 > 0.05" }
        });
        let t = render(&r, NOW);
        let skip = [
            "canary_share",
            "table_canary_share",
            "file_canary_share",
            "latency_percentile",
            "plan",
            "share",
            "connected",
            "driving",
        ];
        assert_all_shown(&r, &t, &skip);
        assert!(t.contains("plan 3f2a1b9c0d4e (a hash"), "{t}");
        assert!(
            t.contains("fleet: driven by gw1 (this gateway: gw2), 3 live gateway(s): gw1, gw2, gw3; etcd connected"),
            "{t}"
        );
        assert!(t.contains("  gw1      900       75%"), "{t}");
        assert!(!t.contains("COPIES"), "{t}");
        // In a shadow stage: each gateway's part of the copies.
        r["fleet"]["windows"][0]["shadow"] =
            json!({ "copies": 20, "errors": 3, "compared": 19, "mismatches": 4, "latency_ms": 25 });
        r["fleet"]["windows"][1]["shadow"] = json!({ "copies": 11, "errors": 0, "compared": 0, "mismatches": 0, "latency_ms": null });
        let t = render(&r, NOW);
        assert_all_shown(&r, &t, &skip);
        assert!(
            t.contains(
                "the canary's answers to each gateway's copies (the stage is judged on their sum):"
            ),
            "{t}"
        );
        let row = t
            .lines()
            .find(|l| l.starts_with("  gw1") && l.contains("4 of 19"));
        assert!(row.is_some_and(|l| l.contains("25 ms")), "{t}");
    }

    #[test]
    fn hooks_a_confirmation_and_prometheus_gates_are_shown() {
        let mut r = shop();
        r["state"] = json!("awaiting_confirmation");
        r["hooks"] = json!({ "confirm_step": "http://release-bot:8000/confirm", "events": "http://release-bot:8000/events", "events_waiting": 3 });
        r["confirmation"] = json!({ "step": 3, "asks": 2, "last_asked": "2024-05-01T10:11:58.000Z", "last_asked_ms": 1_714_558_318_000_u64, "answer": "HTTP 403", "confirmed": false });
        r["last_evaluation"]["prometheus"] = json!([
            { "gate": "checkout-errors", "query": "sum(rate(checkout_failed_total[1m]))", "max": 0.5, "on_error": "pause",
              "value": 0.25, "at": "2024-05-01T10:11:50.000Z", "fresh": true, "ok": true },
            { "gate": "queue-lag", "query": "max(lag)", "min": 1.0, "on_error": "ignore",
              "value": null, "error": "query \"max(lag)\": empty result (no series)", "at": "2024-05-01T10:11:50.000Z", "fresh": true, "ok": false }
        ]);
        let t = render(&r, NOW);
        let skip = [
            "canary_share",
            "table_canary_share",
            "file_canary_share",
            "latency_percentile",
            "last_asked_ms",
            "confirmed",
            "fresh",
            "ok",
            "on_error",
        ];
        assert_all_shown(&r, &t, &skip);
        assert!(
            t.contains("confirmation of step 3: asked 2 time(s), last "),
            "{t}"
        );
        assert!(t.contains(": HTTP 403; the step waits"), "{t}");
        assert!(
            t.contains("events to http://release-bot:8000/events, 3 waiting"),
            "{t}"
        );
        assert!(t.contains("error (on_error: ignore)"), "{t}");
    }

    #[test]
    fn the_list_is_a_summary_then_each_in_full() {
        let mut held = shop();
        held["route"] = json!("search");
        held["state"] = json!("paused");
        held["held_weights"] = json!([9500, 500]);
        held["last_evaluation"] = Value::Null;
        let all = json!({ "rollouts": [shop(), held] });
        let t = render_all(&all, NOW);
        let skip = [
            "canary_share",
            "table_canary_share",
            "file_canary_share",
            "latency_percentile",
        ];
        assert_all_shown(&all, &t, &skip);
        assert!(t.starts_with("ROUTE   STATE        STEP    SHARE  CANARY\nshop    progressing  2 of 4  20%    shop-canary\nsearch  paused       2 of 4  20%    shop-canary\n"), "{t}");
        assert!(t.contains("held weights 9500, 500"), "{t}");
        assert!(t.contains("last evaluation: none yet"), "{t}");
        assert_eq!(
            render_all(&json!({ "rollouts": [] }), NOW),
            "no rollouts (a route with a `rollout:` section starts one)\n"
        );
    }
}
