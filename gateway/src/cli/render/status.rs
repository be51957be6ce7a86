//! `dyegate status`: the version serving, where it came from, whether the routes file (or
//! etcd) still holds it, the reloads, the last error and how old it is, the process, TLS.

use super::{count, duration, short_sha, table, text, when};
use serde_json::Value;

/// Aligned `label  value` lines; a value's further lines are indented under its first.
fn pairs(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in rows {
        for (i, line) in value.lines().enumerate() {
            let label = if i == 0 { *label } else { "" };
            out.push_str(format!("{label:<width$}  {line}").trim_end());
            out.push('\n');
        }
    }
    out
}

pub fn render(s: &Value, now_unix: u64) -> String {
    let mut rows = vec![
        (
            "version",
            format!(
                "{}, applied {} by {}",
                super::versions::id(s),
                when(&text(&s["loaded_at"]), now_unix),
                text(&s["trigger"])
            ),
        ),
        ("sha256", text(&s["sha256"])),
        ("source", source(s)),
        (
            "table",
            format!(
                "{}, {}",
                count(s["routes"].as_u64().unwrap_or(0), "route"),
                count(s["upstreams"].as_u64().unwrap_or(0), "upstream")
            ),
        ),
        ("reloads", reloads(s)),
        ("last error", last_error(&s["last_error"])),
        ("state errors", state_errors(&s["state_errors"])),
        ("audit log", text(&s["audit_log"])),
        (
            "process",
            format!(
                "pid {}, {} in flight, {}",
                text(&s["pid"]),
                count(s["in_flight"].as_u64().unwrap_or(0), "request"),
                if s["draining"] == true {
                    "draining (handing over to a new process)"
                } else {
                    "not draining"
                }
            ),
        ),
    ];
    if let Some(tls) = s.get("tls").filter(|t| !t.is_null()) {
        rows.push(("tls", tls_text(tls, now_unix)));
    }
    pairs(&rows)
}

/// The routes file and whether it holds the version serving, or etcd and its connection.
fn source(s: &Value) -> String {
    if s["source"] == "etcd" {
        let e = &s["etcd"];
        let endpoints: Vec<String> = (e["endpoints"].as_array().into_iter().flatten())
            .map(text)
            .collect();
        let mut out = format!(
            "etcd {} under {}: {}{}",
            endpoints.join(", "),
            text(&e["prefix"]),
            if s["connected"] == true {
                "connected"
            } else {
                "not connected"
            },
            if s["stale"] == true {
                ", stale (serving the table cached in state_dir, not yet confirmed by etcd)"
            } else {
                ""
            }
        );
        out.push_str(&format!(
            "\nrevision {}, rejected revision {}, {}",
            text(&e["revision"]),
            text(&e["rejected_revision"]),
            count(e["relists"].as_u64().unwrap_or(0), "re-list")
        ));
        if !e["last_connect_error"].is_null() {
            out.push_str(&format!(
                "\nlast connect error: {}",
                text(&e["last_connect_error"])
            ));
        }
        if s["divergent"] == true {
            out.push_str(
                "\ndivergent: a local rollback serves another table than the fleet's; the next \
                 revision replaces it",
            );
        }
        return out;
    }
    let file = text(&s["routes_file"]);
    match (&s["file_sha256"], s["matches_file"] == true) {
        (Value::Null, _) => format!("routes file {file}: cannot be read"),
        (_, true) => format!("routes file {file}: holds the version serving"),
        (sha, false) => format!(
            "routes file {file} (sha256 {}): differs from the version serving;\n\
             the next reload (a save of the file, SIGHUP, dyegate reload) applies the file if valid",
            short_sha(&text(sha))
        ),
    }
}

fn reloads(s: &Value) -> String {
    let r = &s["reloads"];
    let n = |k: &str| text(&r[k]);
    let mut out = format!(
        "{} applied, {} no-op, {} failed, {}",
        n("applied"),
        n("noop"),
        n("failed"),
        count(r["rollback"].as_u64().unwrap_or(0), "rollback")
    );
    match &s["reload_in_progress"] {
        Value::Null => out.push_str("; none in progress"),
        p => out.push_str(&format!(
            "; one in progress ({}, since {})",
            text(&p["trigger"]),
            text(&p["since"])
        )),
    }
    out
}

/// `3 reloads ago, 12 min ago (fixed since by version 5: sighup, applied)` and its errors.
fn last_error(e: &Value) -> String {
    if e.is_null() {
        return "none".into();
    }
    let since = e["attempts_since"].as_u64().unwrap_or(0);
    let reloads = match since {
        0 => "the latest reload".to_string(),
        n => format!("{} ago", count(n, "reload")),
    };
    let age = e["age_s"]
        .as_u64()
        .map_or_else(String::new, |a| format!(", {} ago", duration(a)));
    let fixed = match &e["fixed_by"] {
        Value::Null if since == 0 => "still failing".to_string(),
        Value::Null => "not fixed since".to_string(),
        f => format!(
            "fixed since: version {} {} by {} at {}",
            text(&f["version"]),
            match f["result"].as_str() {
                Some("no_op") => "kept (no change)",
                Some("rollback") => "rolled back to",
                _ => "applied",
            },
            text(&f["trigger"]),
            text(&f["time"])
        ),
    };
    let errors = e["errors"].as_array().map_or(&[][..], Vec::as_slice);
    let mut out = format!(
        "{reloads}{age} ({fixed})\n{} at {}: {}",
        text(&e["trigger"]),
        text(&e["time"]),
        count(errors.len() as u64, "error")
    );
    for line in errors {
        out.push('\n');
        out.push_str(&text(line));
    }
    out
}

fn state_errors(s: &Value) -> String {
    match s["count"].as_u64() {
        None | Some(0) => "none".into(),
        Some(n) => {
            let last = &s["last"];
            format!(
                "{n} (writes of state that failed; the changes are in effect)\nlast at {}: {}: {}",
                text(&last["time"]),
                text(&last["what"]),
                text(&last["error"])
            )
        }
    }
}

fn tls_text(t: &Value, now_unix: u64) -> String {
    let listen: Vec<String> = (t["listen"].as_array().into_iter().flatten())
        .map(text)
        .collect();
    let mut out = format!(
        "listen {}, min version {}, h2 {}; loaded {} by {}; {}",
        listen.join(", "),
        text(&t["min_version"]),
        if t["h2"] == true { "on" } else { "off" },
        when(&text(&t["loaded_at"]), now_unix),
        text(&t["trigger"]),
        if t["failing"] == true {
            "failing: the last read failed, the certificates served are older than the files"
        } else {
            "not failing"
        }
    );
    let rows: Vec<Vec<String>> = (t["certificates"].as_array().into_iter().flatten())
        .map(|c| {
            let names: Vec<String> = (c["names"].as_array().into_iter().flatten())
                .map(text)
                .collect();
            let days = c["seconds_left"].as_i64().unwrap_or(0) / 86_400;
            vec![
                text(&c["name"]),
                names.join(","),
                text(&c["not_after"]),
                format!("{} ({days} days)", text(&c["seconds_left"])),
                if c["default"] == true { "yes" } else { "" }.into(),
                text(&c["cert"]),
                text(&c["key"]),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &[
            "CERTIFICATE",
            "NAMES",
            "NOT AFTER",
            "SECONDS LEFT",
            "DEFAULT",
            "CERT",
            "KEY",
        ],
        &rows,
    ));
    if let Some(e) = t.get("last_error").filter(|e| !e.is_null()) {
        out.push_str(&format!(
            "last error at {} ({}):",
            text(&e["at"]),
            text(&e["trigger"])
        ));
        for line in e["errors"].as_array().into_iter().flatten() {
            out.push('\n');
            out.push_str(&text(line));
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

    fn file_status() -> Value {
        json!({
            "version": 5, "sha256": "3f2a9c1e0b7d44aa0123456789abcdef0123456789abcdef0123456789abcdef",
            "loaded_at": "2024-05-01T10:00:00.123Z", "trigger": "file",
            "routes_file": "/etc/dyegate/routes.yaml",
            "file_sha256": "aa11bb22cc33dd44ee55ff6600000000000000000000000000000000000000ff",
            "matches_file": false, "routes": 3, "upstreams": 4,
            "last_error": {
                "time": "2024-05-01T09:48:00.000Z", "trigger": "file",
                "errors": ["/etc/dyegate/routes.yaml:9:33: routes[0].split[1].weight: found -5, expected a whole number >= 0"],
                "age_s": 1440, "attempts_since": 3,
                "fixed_by": { "version": 4, "result": "applied", "trigger": "sighup", "time": "2024-05-01T09:50:00.000Z" }
            },
            "reload_in_progress": null,
            "state_errors": { "count": 1, "last": { "time": "2024-05-01T09:00:00.000Z", "what": "audit", "error": "audit log /var/lib/dyegate/audit.log: No space left on device" } },
            "reloads": { "applied": 4, "noop": 1, "failed": 2, "rollback": 1 },
            "audit_log": "/var/lib/dyegate/audit.log", "source": "file",
            "pid": 4242, "draining": false, "in_flight": 7,
        })
    }

    #[test]
    fn a_file_fed_status_states_every_fact() {
        let s = file_status();
        let t = render(&s, NOW);
        // The age is shown as a duration: 1440 s, "24 min ago".
        assert_all_shown(&s, &t, &["age_s"]);
        assert_eq!(
            t,
            "version       5, applied 2024-05-01T10:00:00.123Z (12 min ago) by file
sha256        3f2a9c1e0b7d44aa0123456789abcdef0123456789abcdef0123456789abcdef
source        routes file /etc/dyegate/routes.yaml (sha256 aa11bb22cc33): differs from the version serving;
              the next reload (a save of the file, SIGHUP, dyegate reload) applies the file if valid
table         3 routes, 4 upstreams
reloads       4 applied, 1 no-op, 2 failed, 1 rollback; none in progress
last error    3 reloads ago, 24 min ago (fixed since: version 4 applied by sighup at 2024-05-01T09:50:00.000Z)
              file at 2024-05-01T09:48:00.000Z: 1 error
              /etc/dyegate/routes.yaml:9:33: routes[0].split[1].weight: found -5, expected a whole number >= 0
state errors  1 (writes of state that failed; the changes are in effect)
              last at 2024-05-01T09:00:00.000Z: audit: audit log /var/lib/dyegate/audit.log: No space left on device
audit log     /var/lib/dyegate/audit.log
process       pid 4242, 7 requests in flight, not draining
"
        );
    }

    #[test]
    fn a_failing_source_and_a_clean_one() {
        let mut s = file_status();
        s["last_error"]["fixed_by"] = Value::Null;
        s["last_error"]["attempts_since"] = json!(0);
        s["matches_file"] = json!(true);
        let t = render(&s, NOW);
        assert!(
            t.contains("last error    the latest reload, 24 min ago (still failing)\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "source        routes file /etc/dyegate/routes.yaml: holds the version serving\n"
            ),
            "{t}"
        );
        s["last_error"] = Value::Null;
        s["state_errors"] = json!({ "count": 0, "last": null });
        s["reload_in_progress"] =
            json!({ "trigger": "sighup", "since": "2024-05-01T10:11:59.000Z" });
        let t = render(&s, NOW);
        assert!(
            t.contains("last error    none\nstate errors  none\n"),
            "{t}"
        );
        assert!(
            t.contains("; one in progress (sighup, since 2024-05-01T10:11:59.000Z)"),
            "{t}"
        );
    }

    #[test]
    fn an_etcd_fed_status_with_tls_states_every_fact() {
        let mut s = file_status();
        for k in ["routes_file", "file_sha256", "matches_file"] {
            s.as_object_mut().map(|m| m.remove(k));
        }
        s["source"] = json!("etcd");
        s["connected"] = json!(false);
        s["stale"] = json!(true);
        s["divergent"] = json!(true);
        s["etcd"] = json!({
            "endpoints": ["http://10.0.0.5:2379", "http://10.0.0.6:2379"], "prefix": "/dyegate/prod/",
            "revision": 42, "rejected_revision": 41, "last_connect_error": "connection refused", "relists": 2
        });
        s["tls"] = json!({
            "listen": ["0.0.0.0:8443"], "min_version": "1.2", "h2": true,
            "certificates": [{ "name": "shop.example.com", "names": ["shop.example.com", "*.shop.example.com"],
                "cert": "/etc/dyegate/certs/shop.pem", "key": "/etc/dyegate/certs/shop.key",
                "not_after": "2024-07-30T00:00:00Z", "seconds_left": 7_660_080, "default": true }],
            "loaded_at": "2024-05-01T09:00:00.000Z", "trigger": "startup", "failing": true,
            "last_error": { "at": "2024-05-01T10:05:00.000Z", "trigger": "file", "errors": ["gateway.yaml:20:9: tls.certificates[0].key: found a key that does not match the certificate"] }
        });
        let t = render(&s, NOW);
        assert_all_shown(&s, &t, &["age_s"]);
        assert!(t.contains("etcd http://10.0.0.5:2379, http://10.0.0.6:2379 under /dyegate/prod/: not connected, stale"), "{t}");
        assert!(t.contains("divergent: a local rollback"), "{t}");
        assert!(t.contains("failing: the last read failed"), "{t}");
    }
}
