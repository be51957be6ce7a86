//! The JSON Schemas of routes.yaml and gateway.yaml (`dyegate schema`, shipped as
//! `conf/schema/*.json`): current with the config types, valid draft 2020-12, accepting every
//! example the repository ships, and rejecting, like `dyegate check`, the mistakes a schema can
//! express. Checked with a standard validator: `check-jsonschema` (PyPI, installed by
//! tests/run.sh).

use std::path::{Path, PathBuf};

use dyegate_suite::gateway::workspace_root;
use dyegate_suite::tools::{describe, run_tool};
use dyegate_suite::{dyegate_cli, CliOutput};

const SCHEMAS: [&str; 2] = ["routes", "gateway"];

fn schema_path(name: &str) -> PathBuf {
    workspace_root().join(format!("conf/schema/{name}.json"))
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dyegate-schema-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `check-jsonschema --schemafile conf/schema/NAME.json FILES...`: Ok or the validator's report.
fn validate(schema: &str, files: &[PathBuf]) -> Result<(), String> {
    let mut args = vec![
        "--schemafile".into(),
        schema_path(schema).display().to_string(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = run_tool("check-jsonschema", &args, workspace_root());
    if out.status.success() {
        Ok(())
    } else {
        Err(describe(&out))
    }
}

#[test]
fn shipped_schemas_are_current() {
    for name in SCHEMAS {
        let out = dyegate_cli(["schema", name]);
        assert_eq!(out.code, Some(0), "{out}");
        let shipped = std::fs::read_to_string(schema_path(name)).expect("conf/schema");
        assert!(
            out.stdout == shipped,
            "conf/schema/{name}.json is stale (the config types changed): regenerate it with\n  \
             cargo run -p dyegate -- schema {name} > conf/schema/{name}.json"
        );
    }
}

#[test]
fn schemas_are_valid_draft_2020_12() {
    let files: Vec<String> = SCHEMAS
        .iter()
        .map(|s| schema_path(s).display().to_string())
        .collect();
    let mut args = vec!["--check-metaschema".to_string()];
    args.extend(files);
    let out = run_tool("check-jsonschema", &args, workspace_root());
    assert!(out.status.success(), "{}", describe(&out));
    for name in SCHEMAS {
        let text = std::fs::read_to_string(schema_path(name)).expect("schema");
        assert!(
            text.contains("\"$schema\": \"https://json-schema.org/draft/2020-12/schema\""),
            "{name}: not draft 2020-12"
        );
    }
}

/// The `data` entries of the ConfigMaps in `file` (a Kubernetes manifest), by key.
fn configmap_files(file: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(file).expect("manifest");
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("YAML");
        if value["kind"] != "ConfigMap" {
            continue;
        }
        if let Some(data) = value["data"].as_mapping() {
            for (k, v) in data {
                out.push((
                    k.as_str().expect("key").to_string(),
                    v.as_str().expect("value").to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_shipped_example_validates() {
    let dir = tempdir("examples");
    let root = workspace_root();
    let mut routes = vec![root.join("conf/routes.yaml")];
    let mut gateways = vec![
        root.join("conf/gateway.yaml"),
        root.join("deploy/debian/gateway.yaml"),
        root.join("docker/gateway.yaml"),
    ];
    for manifest in [
        "deploy/kubernetes/base/configmap-gateway.yaml",
        "deploy/kubernetes/base/configmap-routes.yaml",
        "deploy/kubernetes/overlays/example/routes.yaml",
    ] {
        for (i, (key, text)) in configmap_files(&root.join(manifest))
            .into_iter()
            .enumerate()
        {
            let f = dir.join(format!("{}-{i}-{key}", manifest.replace('/', "_")));
            std::fs::write(&f, text).expect("write");
            match key.as_str() {
                "routes.yaml" => routes.push(f),
                "gateway.yaml" => gateways.push(f),
                other => panic!("{manifest}: unexpected ConfigMap key {other}"),
            }
        }
    }
    assert_eq!((routes.len(), gateways.len()), (3, 4), "examples found");
    validate("routes", &routes).unwrap_or_else(|e| panic!("routes examples: {e}"));
    validate("gateway", &gateways).unwrap_or_else(|e| panic!("gateway examples: {e}"));
    // The same files pass dyegate's own checks.
    for r in &routes {
        let out = dyegate_cli([Path::new("check"), r.as_path()]);
        assert_eq!(out.code, Some(0), "{}: {out}", r.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// routes.yaml mistakes the schema expresses: types, ranges, enums, unknown and missing fields.
const BAD_ROUTES: &[(&str, &str)] = &[
    ("typo_top_level", "upstream: {}\nroutes: []\n"),
    ("no_routes", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\n"),
    ("route_without_name", "routes:\n  - split: [{ upstream: a, weight: 1 }]\n"),
    ("split_field_typo", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    split: [{ upstream: a, wieght: 1 }]\n"),
    ("negative_weight", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: -5 }]\n"),
    ("huge_weight", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 2000000 }]\n"),
    ("fractional_weight", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 1.5 }]\n"),
    ("unknown_tag_policy", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    dye: { on_unknown_tag: drop }\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("target_field_typo", "upstreams: { a: { targets: [{ adr: \"127.0.0.1:1\" }] } }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("target_weight_negative", "upstreams: { a: { targets: [{ addr: \"127.0.0.1:1\", weight: -1 }] } }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("upstream_without_targets", "upstreams: { a: {} }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("upstreams_as_list", "upstreams: [a]\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("methods_not_a_list", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    match: { methods: GET }\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("match_field_typo", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    match: { hots: a.example }\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("tag_to_a_list", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    dye: { tags: { canary: [a] } }\n    split: [{ upstream: a, weight: 1 }]\n"),
    // read_ms: 0 is "no read timeout"; write_ms has no such meaning.
    ("zero_timeout", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    timeouts: { write_ms: 0 }\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("unknown_protocol", "upstreams: { a: { targets: [\"127.0.0.1:1\"], protocol: h3 } }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("tls_field_typo", "upstreams: { a: { targets: [\"127.0.0.1:1\"], tls: { sni: a.internal, verfy: false } } }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("timeout_field_typo", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    timeouts: { read: 100 }\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("condition_two_tests", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    match: { headers: { x-a: { present: true, regex: a } } }\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("condition_typo", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    match: { cookies: { plan: { rgx: a } } }\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("range_one_bound", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    match: { query: { uid: { range: [5] } } }\n    split: [{ upstream: a, weight: 1 }]\n"),
    ("path_two_forms", "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    match: { path: { prefix: /a, exact: /a } }\n    split: [{ upstream: a, weight: 1 }]\n"),
];

/// The issue's example of every match form and tag source.
const RICH_ROUTES: &str = r#"upstreams: { a: { targets: ["127.0.0.1:1"] } }
routes:
  - name: shop
    match:
      host: shop.example.com
      path: { regex: "^/api/v[0-9]+/" }
      methods: [GET, POST]
      headers:
        x-client: [mobile, web]
        x-region: { regex: "^eu-" }
        x-debug: { present: true }
        x-user-id: { range: [1000, 1999] }
        x-beta: { not: [off, "0"] }
      query: { env: [canary] }
      cookies: { plan: { regex: "^pro" } }
      client_ip: [10.0.0.0/8, "2001:db8::/32"]
    dye:
      header: x-env-tag
      from: [header, "cookie:env_tag", "query:env"]
      tags: { canary: a }
    split: [{ upstream: a, weight: 1 }]
"#;

#[test]
fn every_match_form_validates() {
    let dir = tempdir("rich");
    let f = dir.join("routes.yaml");
    std::fs::write(&f, RICH_ROUTES).expect("write");
    validate("routes", std::slice::from_ref(&f)).unwrap_or_else(|e| panic!("{e}"));
    let out = dyegate_cli([Path::new("check"), f.as_path()]);
    assert_eq!(out.code, Some(0), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// gateway.yaml mistakes the schema expresses.
const BAD_GATEWAYS: &[(&str, &str)] = &[
    ("typo_top_level", "listn: [\"127.0.0.1:8080\"]\n"),
    ("listen_not_a_list", "listen: \"127.0.0.1:8080\"\n"),
    (
        "admin_field_typo",
        "admin: { listen: \"127.0.0.1:9901\", tokn: x }\n",
    ),
    ("otlp_protocol", "tracing: { protocol: udp }\n"),
    ("sample_ratio_range", "tracing: { sample_ratio: 1.5 }\n"),
    ("export_timeout_zero", "tracing: { timeout_ms: 0 }\n"),
    ("threads_zero", "pingora: { threads: 0 }\n"),
    ("threads_negative", "pingora: { threads: -1 }\n"),
    ("threads_word", "pingora: { threads: many }\n"),
    ("runtime_layout", "pingora: { runtime: per_socket }\n"),
    ("h2c_not_boolean", "h2c: \"yes please\"\n"),
    ("debounce_not_a_number", "reload: { debounce_ms: fast }\n"),
    ("history_zero", "reload: { history: 0 }\n"),
    ("access_log_typo", "access_log: { file: \"-\" }\n"),
];

/// `dyegate check` on one file: routes alone, or gateway.yaml next to a valid routes.yaml.
fn dyegate_check(schema: &str, file: &Path) -> CliOutput {
    match schema {
        "routes" => dyegate_cli([Path::new("check"), file]),
        _ => dyegate_cli([Path::new("check"), Path::new("-c"), file]),
    }
}

#[test]
fn mistakes_are_rejected_by_the_schema_and_by_dyegate_check() {
    let dir = tempdir("mistakes");
    std::fs::write(
        dir.join("routes.yaml"),
        "upstreams: { a: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n  - name: r\n    split: [{ upstream: a, weight: 1 }]\n",
    )
    .expect("write");
    let cases: Vec<(&str, PathBuf)> = BAD_ROUTES
        .iter()
        .map(|c| ("routes", c))
        .chain(BAD_GATEWAYS.iter().map(|c| ("gateway", c)))
        .map(|(schema, (name, yaml))| {
            let f = dir.join(format!("{schema}-{name}.yaml"));
            std::fs::write(&f, yaml).expect("write");
            (schema, f)
        })
        .collect();
    // The control: the valid routes.yaml and a gateway.yaml using it pass both.
    let control = dir.join("gateway.yaml");
    std::fs::write(&control, "listen: [\"127.0.0.1:8080\"]\n").expect("write");
    validate("routes", &[dir.join("routes.yaml")]).expect("control routes.yaml");
    validate("gateway", std::slice::from_ref(&control)).expect("control gateway.yaml");
    assert_eq!(dyegate_check("gateway", &control).code, Some(0));

    // One validator process per case, run side by side (each is ~0.3 s of Python start-up).
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(schema, file)| {
                s.spawn(move || {
                    let mut wrong = Vec::new();
                    if validate(schema, std::slice::from_ref(file)).is_ok() {
                        wrong.push(format!("{}: accepted by the schema", file.display()));
                    }
                    let check = dyegate_check(schema, file);
                    if check.code != Some(1) {
                        wrong.push(format!("{}: dyegate check: {check}", file.display()));
                    }
                    wrong
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("case thread"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
