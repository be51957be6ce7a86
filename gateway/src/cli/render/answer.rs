//! The answer to `dyegate reload` and `dyegate rollback` (the reload report): what changed and
//! its diff for a person on stdout; a rejection's errors, one located line each, for stderr.

use super::versions::trigger;
use super::{count, short_sha, text, when};
use serde_json::Value;

/// What an applied, unchanged or rolled-back attempt did (stdout).
pub fn render(r: &Value, now_unix: u64) -> String {
    let mut out = match r["result"].as_str() {
        Some("no_op") => format!(
            "no change: version {} keeps serving (the file is the same, sha256 {})\n",
            text(&r["version_after"]),
            short_sha(&text(&r["sha256"]))
        ),
        Some("rollback") => format!(
            "rolled back: version {} now serves version {}'s table (was version {}){}\n",
            text(&r["version_after"]),
            text(&r["rollback_to"]),
            text(&r["version_before"]),
            swap(r)
        ),
        Some("failed") => format!(
            "rejected: version {} keeps serving\n",
            text(&r["version_before"])
        ),
        _ => format!(
            "applied: version {} (was version {}){}\n",
            text(&r["version_after"]),
            text(&r["version_before"]),
            swap(r)
        ),
    };
    let by = match (&r["identity"], &r["client"]) {
        (Value::Null, Value::Null) => String::new(),
        (i, c) => format!(", as {} from {}", text(i), text(c)),
    };
    out.push_str(&format!(
        "trigger {} at {}{by}, sha256 {}\n",
        trigger(r),
        when(&text(&r["time"]), now_unix),
        text(&r["sha256"])
    ));
    if let Some(t) = r.get("timings").filter(|t| !t.is_null()) {
        out.push_str(&format!(
            "parse {} µs ({} entries parsed, {} unchanged), decode {} µs, validate {} µs, compile {} µs\n",
            text(&t["parse_us"]),
            text(&t["parsed"]),
            text(&t["reused"]),
            text(&t["decode_us"]),
            text(&t["validate_us"]),
            text(&t["compile_us"])
        ));
    }
    let diff = r["diff"].as_array().map_or(&[][..], Vec::as_slice);
    if let Some(summary) = r["diff_summary"].as_str() {
        out.push_str(&format!("diff: {summary}\n"));
    }
    for line in diff {
        out.push_str(&format!("  {}\n", text(line)));
    }
    if let Some(note) = r.get("rollout").filter(|n| !n.is_null()) {
        for line in flat("rollout", note) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    for e in r["state_errors"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "warning: in effect but not fully recorded: {}\n",
            text(e)
        ));
    }
    for w in r["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("warning: {}\n", text(w)));
    }
    if let Some(g) = r.get("gateway").filter(|g| !g.is_null()) {
        out.push_str(&gateway(g));
    }
    if let Some(tls) = r.get("tls").filter(|t| !t.is_null()) {
        out.push_str(&format!(
            "tls: {}, {}\n",
            text(&tls["result"]),
            count(tls["certificates"].as_u64().unwrap_or(0), "certificate")
        ));
    }
    if r["source"] == "file" {
        out.push_str(match r["matches_file"] == true {
            true => "the routes file holds this version\n",
            false => "the routes file differs from this version\n",
        });
    }
    out
}

/// What a re-read of gateway.yaml did (nothing when it found no change; its errors are the
/// rejection's).
fn gateway(g: &Value) -> String {
    let keys = |k: &str| {
        (g[k].as_array().into_iter().flatten())
            .map(text)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    let applied = keys("applied_live");
    if !applied.is_empty() {
        out.push_str(&format!("gateway.yaml: applied {applied}\n"));
    }
    let waiting = keys("needs_upgrade");
    if !waiting.is_empty() {
        out.push_str(&format!(
            "gateway.yaml: {waiting} changed, not applied until `dyegate upgrade` (or a restart)\n"
        ));
    }
    for w in g["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("warning: gateway.yaml: {}\n", text(w)));
    }
    out
}

/// `, swapped in 812 µs`.
fn swap(r: &Value) -> String {
    r["swap_micros"]
        .as_u64()
        .map_or_else(String::new, |us| format!(", swapped in {us} µs"))
}

/// A nested value as `path value` lines (a rollout's note in a report).
fn flat(path: &str, v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| flat(&format!("{path}.{k}"), v))
            .collect(),
        Value::Array(a) => (a.iter().enumerate())
            .flat_map(|(i, v)| flat(&format!("{path}[{i}]"), v))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![format!("{path}: {}", text(other))],
    }
}

/// A rejected attempt's errors (stderr): a headline, then each error as the gateway located it
/// (`FILE:LINE:COL: path: found ..., expected ...`), then the certificates' errors.
pub fn rejection(r: &Value) -> String {
    let mut out = String::new();
    let errors = r["errors"].as_array().map_or(&[][..], Vec::as_slice);
    if r["result"] == "failed" {
        out.push_str(&format!(
            "dyegate: reload rejected, version {} keeps serving; {}:\n",
            text(&r["version_before"]),
            count(errors.len() as u64, "error")
        ));
        for e in errors {
            out.push_str(&text(e));
            out.push('\n');
        }
    }
    let gateway = (r["gateway"]["errors"].as_array()).map_or(&[][..], Vec::as_slice);
    if !gateway.is_empty() {
        out.push_str(&format!(
            "dyegate: {} rejected, nothing of it applied; {}:\n",
            text(&r["gateway"]["file"]),
            count(gateway.len() as u64, "error")
        ));
        for e in gateway {
            out.push_str(&text(e));
            out.push('\n');
        }
    }
    if let Some(tls) = r.get("tls").filter(|t| t["result"] == "failed") {
        let errors = tls["errors"].as_array().map_or(&[][..], Vec::as_slice);
        out.push_str(&format!(
            "dyegate: certificates rejected, the ones served stay; {}:\n",
            count(errors.len() as u64, "error")
        ));
        for e in errors {
            out.push_str(&text(e));
            out.push('\n');
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

    #[test]
    fn an_applied_reload_states_every_fact() {
        let r = json!({
            "time": "2024-05-01T10:00:00.123Z", "trigger": "api", "result": "applied",
            "version_before": 2, "version_after": 3, "sha256": "abcdef0123456789abcdef",
            "diff_summary": "routes +0 -0 ~1, upstreams +0 -0 ~0",
            "diff": ["shop: split shop-stable 95% -> 80%, shop-canary 5% -> 20%"], "errors": [],
            "client": "127.0.0.1", "identity": "deployer", "swap_micros": 812,
            "timings": { "parse_us": 100, "decode_us": 200, "validate_us": 30, "compile_us": 40, "reused": 5, "parsed": 1 },
            "state_errors": ["audit log /x/audit.log: No space left on device"],
            "rollout": { "rollouts": ["rollout of shop started (api)"] },
            "tls": { "result": "applied", "certificates": 2 }
        });
        let t = render(&r, NOW);
        assert_all_shown(&r, &t, &[]);
        assert_eq!(
            t,
            "applied: version 3 (was version 2), swapped in 812 µs
trigger api at 2024-05-01T10:00:00.123Z (12 min ago), as deployer from 127.0.0.1, sha256 abcdef0123456789abcdef
parse 100 µs (1 entries parsed, 5 unchanged), decode 200 µs, validate 30 µs, compile 40 µs
diff: routes +0 -0 ~1, upstreams +0 -0 ~0
  shop: split shop-stable 95% -> 80%, shop-canary 5% -> 20%
rollout.rollouts[0]: rollout of shop started (api)
warning: in effect but not fully recorded: audit log /x/audit.log: No space left on device
tls: applied, 2 certificates
"
        );
    }

    #[test]
    fn a_rollback_and_a_no_op() {
        let r = json!({
            "time": "2024-05-01T10:00:00.123Z", "trigger": "rollback", "rollback_to": 1, "result": "rollback",
            "version_before": 3, "version_after": 4, "sha256": "abcdef0123456789abcdef",
            "diff_summary": "routes +0 -0 ~1, upstreams +0 -0 ~0", "diff": ["shop: split s 80% -> 95%, c 20% -> 5%"],
            "errors": [], "client": "127.0.0.1", "identity": "anonymous", "swap_micros": 45,
            "source": "file", "matches_file": false
        });
        let t = render(&r, NOW);
        assert_all_shown(&r, &t, &[]);
        assert!(t.starts_with("rolled back: version 4 now serves version 1's table (was version 3), swapped in 45 µs\n"), "{t}");
        assert!(
            t.ends_with("the routes file differs from this version\n"),
            "{t}"
        );
        let n = json!({ "time": "2024-05-01T10:00:00.123Z", "trigger": "sighup", "result": "no_op",
            "version_before": 3, "version_after": 3, "sha256": "abcdef0123456789abcdef", "diff_summary": null, "diff": [], "errors": [] });
        let t = render(&n, NOW);
        // `no_op` reads "no change".
        assert_all_shown(&n, &t, &["result"]);
        assert!(t.starts_with("no change: version 3 keeps serving"), "{t}");
    }

    #[test]
    fn warnings_and_what_gateway_yaml_did_are_shown() {
        let r = json!({
            "time": "2024-05-01T10:00:00.123Z", "trigger": "api", "result": "applied",
            "version_before": 2, "version_after": 3, "sha256": "abcdef0123456789abcdef",
            "diff_summary": "routes +0 -0 ~0, upstreams +1 -0 ~0", "diff": ["upstream pay added"], "errors": [],
            "swap_micros": 9000,
            "warnings": ["DNS name pay.internal (upstream group pay) does not resolve (NXDOMAIN: the name does not exist): no address from it until it does; asked again in the background"],
            "gateway": { "file": "/etc/dyegate/gateway.yaml", "applied_live": ["log.level", "tracing.sample_ratio"],
                         "needs_upgrade": ["access_log.queue"], "errors": [],
                         "warnings": ["access_log.path not applied, the access log is as it was: cannot open /x.log: Permission denied (os error 13)"] }
        });
        let t = render(&r, NOW);
        // The gateway.yaml path is the one the CLI was given.
        assert_all_shown(&r, &t, &["file"]);
        assert!(
            t.contains(
                "warning: DNS name pay.internal (upstream group pay) does not resolve (NXDOMAIN: the name does not exist): no address from it until it does; asked again in the background
gateway.yaml: applied log.level, tracing.sample_ratio
gateway.yaml: access_log.queue changed, not applied until `dyegate upgrade` (or a restart)
warning: gateway.yaml: access_log.path not applied, the access log is as it was: cannot open /x.log: Permission denied (os error 13)
"
            ),
            "{t}"
        );
        // Nothing changed in gateway.yaml: nothing said of it.
        let quiet = json!({ "time": "2024-05-01T10:00:00.123Z", "trigger": "api", "result": "no_op",
            "version_before": 3, "version_after": 3, "sha256": "ab", "diff_summary": null, "diff": [], "errors": [],
            "gateway": { "file": "/etc/dyegate/gateway.yaml", "applied_live": [], "needs_upgrade": [], "errors": [] } });
        assert!(!render(&quiet, NOW).contains("gateway.yaml"));
    }

    #[test]
    fn a_gateway_yaml_with_errors_is_its_located_lines() {
        let r = json!({ "time": "2024-05-01T10:00:00.123Z", "trigger": "api", "result": "no_op",
            "version_before": 3, "version_after": 3, "sha256": "ab", "diff_summary": null, "diff": [], "errors": [],
            "gateway": { "file": "/etc/dyegate/gateway.yaml", "applied_live": [], "needs_upgrade": [],
                         "errors": ["/etc/dyegate/gateway.yaml:3:10: log.level: found \"verbose\", expected one of `error`, `warn`, `info`, `debug`, `trace`"] } });
        assert_eq!(
            rejection(&r),
            "dyegate: /etc/dyegate/gateway.yaml rejected, nothing of it applied; 1 error:
/etc/dyegate/gateway.yaml:3:10: log.level: found \"verbose\", expected one of `error`, `warn`, `info`, `debug`, `trace`
"
        );
    }

    #[test]
    fn a_rejection_is_its_located_lines() {
        let r = json!({ "time": "2024-05-01T10:00:00.123Z", "trigger": "api", "result": "failed",
            "version_before": 3, "version_after": 3, "sha256": "ab", "diff_summary": null, "diff": [],
            "errors": ["/etc/dyegate/routes.yaml:9:33: routes[0].split[1].weight: found -5, expected a whole number >= 0",
                       "/etc/dyegate/routes.yaml:12:5: routes[1].name: found \"shop\" twice, expected each name once"],
            "tls": { "result": "failed", "certificates": 1, "errors": ["gateway.yaml:20:9: tls.certificates[0].key: unreadable"] } });
        assert_eq!(
            rejection(&r),
            "dyegate: reload rejected, version 3 keeps serving; 2 errors:
/etc/dyegate/routes.yaml:9:33: routes[0].split[1].weight: found -5, expected a whole number >= 0
/etc/dyegate/routes.yaml:12:5: routes[1].name: found \"shop\" twice, expected each name once
dyegate: certificates rejected, the ones served stay; 1 error:
gateway.yaml:20:9: tls.certificates[0].key: unreadable
"
        );
    }
}
