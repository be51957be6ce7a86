//! `deploy/observability/`: the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`, synthetic series); every dashboard query is valid PromQL (checked by
//! promtool as a rule) and every metric the rules and the dashboard name is one that a live
//! dyegate exports, read from the real binary's `/metrics` (which itself passes `promtool check
//! metrics`). Metrics another change is still adding are listed in [`PENDING`], explicitly; `up`
//! (Prometheus' own) is not dyegate's and is not looked for.

use std::collections::BTreeSet;
use std::path::PathBuf;

use dyegate_suite::certs::TestCa;
use dyegate_suite::gateway::workspace_root;
use dyegate_suite::tools::{describe, run_tool, tool};
use dyegate_suite::{free_addr, GatewayConfig, Req, Upstream};

const RULES: &str = "deploy/observability/dyegate-rules.yaml";
const RULE_TESTS: &str = "deploy/observability/tests/dyegate-rules.test.yaml";
const DASHBOARD: &str = "deploy/observability/dyegate-dashboard.json";

/// Metrics the rules use that the gateway does not export yet (none today).
/// When one of these appears in `/metrics`, the test asks for it to be removed from here.
const PENDING: &[&str] = &[];

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let out = run_tool("promtool", ["check", "rules", RULES], workspace_root());
    assert!(out.status.success(), "{}", describe(&out));
    let out = run_tool("promtool", ["test", "rules", RULE_TESTS], workspace_root());
    assert!(out.status.success(), "{}", describe(&out));
    let report = describe(&out);
    assert!(report.contains("SUCCESS"), "{report}");
}

/// Every `expr` of the rules file, with the names of the rules it records.
fn rule_exprs() -> (Vec<String>, BTreeSet<String>) {
    let rules: serde_yaml::Value = serde_yaml::from_str(&read(RULES)).expect("rules YAML");
    let mut exprs = Vec::new();
    let mut recorded = BTreeSet::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            exprs.push(rule["expr"].as_str().expect("expr").to_string());
            if let Some(name) = rule["record"].as_str() {
                recorded.insert(name.to_string());
            }
        }
    }
    (exprs, recorded)
}

/// Every PromQL query of the dashboard: panel targets, the route variable, annotations.
fn dashboard_queries() -> Vec<String> {
    let dash: serde_json::Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    let mut queries = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            queries.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for a in dash["annotations"]["list"].as_array().expect("annotations") {
        queries.push(a["expr"].as_str().expect("annotation expr").to_string());
    }
    queries
}

/// Grafana's variables replaced by values PromQL accepts.
fn without_grafana_variables(query: &str) -> String {
    query
        .replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("$route", "shop")
}

#[test]
fn the_dashboard_is_well_formed_and_every_query_is_valid_promql() {
    let dash: serde_json::Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    assert!(
        dash["title"].is_string() && dash["uid"].is_string(),
        "title and uid"
    );
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let panels = dash["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels
        .iter()
        .map(|p| p["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for p in panels {
        let grid = &p["gridPos"];
        let (x, w) = (
            grid["x"].as_u64().expect("x"),
            grid["w"].as_u64().expect("w"),
        );
        assert!(
            x + w <= 24 && grid["h"].as_u64().is_some(),
            "{}: gridPos {grid}",
            p["title"]
        );
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
    let variables: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect();
    assert_eq!(variables, ["datasource", "route"]);

    // promtool parses every query as the expression of a recording rule.
    let dir = tempdir("dashboard");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in dashboard_queries().iter().enumerate() {
        let q = serde_json::to_string(&without_grafana_variables(q)).expect("quote");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {q}\n"
        ));
    }
    let file = dir.join("dashboard-queries.yaml");
    std::fs::write(&file, rules).expect("write");
    let out = run_tool(
        "promtool",
        ["check".as_ref(), "rules".as_ref(), file.as_os_str()],
        workspace_root(),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dyegate-obs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The metric names in a PromQL query: identifiers starting with `dyegate_` (exported metrics)
/// or `dyegate:` (recording rules), outside quoted label values.
fn metric_names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut quoted = false;
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            quoted = !quoted;
        }
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if !quoted && word(c) && (i == 0 || !word(bytes[i - 1])) {
            let end = (i..bytes.len())
                .find(|&j| !word(bytes[j]))
                .unwrap_or(bytes.len());
            let name = &query[i..end];
            if name.starts_with("dyegate_") || name.starts_with("dyegate:") {
                names.insert(name.to_string());
            }
            i = end;
            continue;
        }
        i += 1;
    }
    names
}

/// The metric names a scrape exposes: each `# TYPE` family, with its histogram series names.
fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            names.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_name_is_exported_by_a_live_gateway() {
    let stable = Upstream::start("stable");
    let canary = Upstream::start("canary");
    let config = GatewayConfig::new(&format!(
        "upstreams:\n  shop-stable: {{ targets: [\"{}\"] }}\n  shop-canary: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: shop\n    dye: {{ tags: {{ canary: shop-canary }} }}\n    \
         split: [{{ upstream: shop-stable, weight: 95 }}, {{ upstream: shop-canary, weight: 5 }}]\n",
        stable.target(),
        canary.target()
    ));
    // An HTTPS listener too: the certificate metrics the TLS alerts watch exist only with one.
    let leaf = TestCa::new("observability CA").leaf(&["shop.example.com"]);
    config.write("shop.pem", &leaf.cert_pem);
    config.write("shop.key", &leaf.key_pem);
    let gw = config
        .with_gateway_extra(&format!(
            "tls:\n  listen: [\"{}\"]\n  certificates: [{{ cert: shop.pem, key: shop.key }}]\n",
            free_addr()
        ))
        .start();
    assert_eq!(Req::get("/").send(gw.addr()).await.status, 200);
    let scrape = Req::get("/metrics").send(gw.admin_addr()).await;
    assert_eq!(scrape.status, 200);
    let live = exported(&scrape.text());
    assert!(live.contains("dyegate_requests_total"), "{}", scrape.text());
    promtool_check_metrics(&scrape.text());

    let (rule_queries, recorded) = rule_exprs();
    let mut named: Vec<(String, String)> = Vec::new();
    for (source, queries) in [(RULES, rule_queries), (DASHBOARD, dashboard_queries())] {
        for q in queries {
            for name in metric_names(&q) {
                named.push((source.to_string(), name));
            }
        }
    }
    let mut missing = Vec::new();
    let mut used_pending = BTreeSet::new();
    for (source, name) in &named {
        if name.starts_with("dyegate:") {
            if !recorded.contains(name) || source != RULES {
                missing.push(format!("{source}: {name} is not recorded by {RULES}"));
            }
        } else if PENDING.contains(&name.as_str()) {
            used_pending.insert(name.as_str());
        } else if !live.contains(name) {
            missing.push(format!("{source}: {name} is not exported by dyegate"));
        }
    }
    assert!(
        missing.is_empty(),
        "{}\nexported: {live:?}",
        missing.join("\n")
    );
    for pending in PENDING {
        assert!(
            !live.contains(*pending),
            "{pending} is exported now: remove it from PENDING in {}",
            file!()
        );
        assert!(
            used_pending.contains(pending),
            "{pending} is in PENDING but used nowhere"
        );
    }
    // The families the issue asks the alerts to watch are all named somewhere.
    let all: BTreeSet<&str> = named.iter().map(|(_, n)| n.as_str()).collect();
    for wanted in [
        "dyegate_requests_total",
        "dyegate_request_duration_seconds_bucket",
        "dyegate_reloads_total",
        "dyegate_routing_info",
        "dyegate_spans_dropped_total",
        "dyegate_access_log_dropped_total",
        "dyegate_target_healthy",
        "dyegate_split_weight",
        "dyegate_decisions_total",
        "dyegate_tls_certificate_expiry_seconds",
        "dyegate_tls_certificate_reloads_total",
        "dyegate_dns_resolve_failures_total",
        "dyegate_dns_addresses",
    ] {
        assert!(all.contains(wanted), "{wanted} is watched by nothing");
    }
}

/// `promtool check metrics` (exposition format and naming lint) on a scrape.
fn promtool_check_metrics(scrape: &str) {
    let dir = tempdir("scrape");
    let file = dir.join("metrics.txt");
    std::fs::write(&file, scrape).expect("write");
    let out = std::process::Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).expect("scrape file"))
        .output()
        .expect("running promtool");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "lint: {}",
        describe(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metric_names_skip_label_values_and_functions() {
    let q = r#"sum by (route) (rate(dyegate_requests_total{route="dyegate_fake", status_class="5xx"}[5m])) / dyegate:group_requests:rate5m"#;
    let names: Vec<String> = metric_names(q).into_iter().collect();
    assert_eq!(
        names,
        ["dyegate:group_requests:rate5m", "dyegate_requests_total"]
    );
}
