//! `dyegate upstreams`: each group of the running table (its checks, outlier detection, load)
//! and each target's health, ejection, last check, load and failures.

use super::{table, text, when};
use serde_json::Value;

pub fn render(u: &Value, now_unix: u64) -> String {
    let mut out = String::new();
    for g in u["groups"].as_array().into_iter().flatten() {
        let check = match &g["health_check"] {
            Value::Null => "no health check".to_string(),
            c if c["tcp"] == true => {
                format!("health check tcp every {} ms", text(&c["interval_ms"]))
            }
            c => format!(
                "health check http {} every {} ms",
                text(&c["http"]),
                text(&c["interval_ms"])
            ),
        };
        out.push_str(&format!(
            "{}: {check}, outlier detection {}, max in flight {}, {} in flight\n",
            text(&g["name"]),
            if g["outlier"] == true { "on" } else { "off" },
            match &g["max_in_flight"] {
                Value::Null => "unlimited".to_string(),
                m => text(m),
            },
            text(&g["in_flight"])
        ));
        let rows: Vec<Vec<String>> = (g["targets"].as_array().into_iter().flatten())
            .map(|t| {
                let state = match &t["ejected_until"] {
                    Value::Null => text(&t["state"]),
                    until => format!(
                        "{} until {}",
                        text(&t["state"]),
                        when(&text(until), now_unix)
                    ),
                };
                let last = match &t["last_check"] {
                    Value::Null => "-".to_string(),
                    c => format!("{} {}", text(&c["result"]), when(&text(&c["at"]), now_unix)),
                };
                vec![
                    format!("  {}", text(&t["addr"])),
                    text(&t["weight"]),
                    state,
                    text(&t["in_flight"]),
                    text(&t["failures"]),
                    text(&t["consecutive_failures"]),
                    last,
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "  TARGET",
                "WEIGHT",
                "STATE",
                "IN FLIGHT",
                "FAILURES",
                "IN A ROW",
                "LAST CHECK",
            ],
            &rows,
        ));
    }
    out.push_str(&format!("version {}\n", text(&u["version"])));
    out
}

#[cfg(test)]
mod tests {
    use super::super::facts::assert_all_shown;
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_714_558_320; // 2024-05-01T10:12:00Z

    #[test]
    fn the_upstreams_table_states_every_fact() {
        let u = json!({ "version": 7, "groups": [
            { "name": "shop-stable", "health_check": { "http": "/healthz", "interval_ms": 1000 }, "outlier": false,
              "max_in_flight": null, "in_flight": 3, "targets": [
                { "addr": "127.0.0.1:9001", "weight": 1, "state": "healthy", "ejected_until": null,
                  "last_check": { "result": "success", "at": "2024-05-01T10:11:58.000Z" }, "in_flight": 3, "consecutive_failures": 0, "failures": 0 } ] },
            { "name": "shop-canary", "health_check": { "tcp": true, "interval_ms": 500 }, "outlier": true,
              "max_in_flight": 100, "in_flight": 0, "targets": [
                { "addr": "127.0.0.1:9002", "weight": 2, "state": "ejected", "ejected_until": "2024-05-01T10:13:00.000Z",
                  "last_check": null, "in_flight": 0, "consecutive_failures": 5, "failures": 12 } ] },
            { "name": "legacy", "health_check": null, "outlier": false, "max_in_flight": null, "in_flight": 0, "targets": [] }
        ]});
        let t = render(&u, NOW);
        assert_all_shown(&u, &t, &[]);
        assert_eq!(
            t,
            "shop-stable: health check http /healthz every 1000 ms, outlier detection off, max in flight unlimited, 3 in flight
  TARGET          WEIGHT  STATE    IN FLIGHT  FAILURES  IN A ROW  LAST CHECK
  127.0.0.1:9001  1       healthy  3          0         0         success 2024-05-01T10:11:58.000Z (2 s ago)
shop-canary: health check tcp every 500 ms, outlier detection on, max in flight 100, 0 in flight
  TARGET          WEIGHT  STATE                                              IN FLIGHT  FAILURES  IN A ROW  LAST CHECK
  127.0.0.1:9002  2       ejected until 2024-05-01T10:13:00.000Z (in 1 min)  0          12        5         -
legacy: no health check, outlier detection off, max in flight unlimited, 0 in flight
  TARGET  WEIGHT  STATE  IN FLIGHT  FAILURES  IN A ROW  LAST CHECK
version 7
"
        );
    }
}
