//! `deploy/kubernetes/`: the base and the example overlay, rendered by `kubectl kustomize`, pass
//! the Kubernetes API schemas (`kubernetes-validate --strict`, PyPI; the ServiceMonitor against
//! the Prometheus Operator's CRD schema, `@kubernetes-models/prometheus-operator`, npm), hold
//! the contract the gateway needs (probes, drain timing, read-only root, the routes ConfigMap
//! mounted as a directory, admin port kept in-cluster), and the shipped gateway.yaml runs the
//! real gateway: probes answer, /metrics takes the token file, a `..data` swap of the routes
//! directory reloads live.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dyegate_suite::gateway::{workspace_root, GATEWAY_FILE};
use dyegate_suite::tools::{describe, run_tool, toolbox_dir};
use dyegate_suite::{wait_until_async, GatewayConfig, Req, Upstream};
use serde_yaml::Value;

/// Kubernetes version the manifests are validated against (the preStop `sleep` action needs
/// 1.30).
const KUBERNETES_VERSION: &str = "1.30.0";

/// `kubectl kustomize deploy/kubernetes/<dir>`, as YAML documents.
fn render(dir: &str) -> Vec<Value> {
    let out = run_tool(
        "kubectl",
        ["kustomize", &format!("deploy/kubernetes/{dir}")],
        workspace_root(),
    );
    assert!(out.status.success(), "kustomize {dir}: {}", describe(&out));
    serde_yaml::Deserializer::from_slice(&out.stdout)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("rendered YAML"))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} rendered"))
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dyegate-k8s-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `kubernetes-validate --strict` on `docs` (none of them custom resources).
fn kubernetes_validate(docs: &[&Value], file: &Path) -> std::process::Output {
    let text: Vec<String> = docs
        .iter()
        .map(|d| serde_yaml::to_string(d).expect("YAML"))
        .collect();
    std::fs::write(file, text.join("---\n")).expect("write");
    run_tool(
        "kubernetes-validate",
        [
            "--strict".as_ref(),
            "-k".as_ref(),
            KUBERNETES_VERSION.as_ref(),
            file.as_os_str(),
        ],
        workspace_root(),
    )
}

/// Validates ServiceMonitors with the npm models' own validator (the CRD's OpenAPI schema).
fn servicemonitor_validate(docs: &[&Value], file: &Path) -> std::process::Output {
    let json: Vec<serde_json::Value> = docs
        .iter()
        .map(|d| serde_json::to_value(d).expect("JSON"))
        .collect();
    std::fs::write(file, serde_json::to_string(&json).expect("JSON")).expect("write");
    let script = r#"
        import { readFileSync } from "node:fs";
        import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
        let failed = 0;
        for (const doc of JSON.parse(readFileSync(process.argv[1], "utf8"))) {
          try { new ServiceMonitor(doc).validate(); console.log("valid", doc.metadata.name); }
          catch (e) { failed++; console.log("invalid", doc.metadata.name, e.message); }
        }
        process.exit(failed ? 1 : 0);
    "#;
    // Run from the toolbox's node dir so the module resolves from its node_modules.
    run_tool(
        "node",
        [
            "--input-type=module".as_ref(),
            "-e".as_ref(),
            script.as_ref(),
            file.as_os_str(),
        ],
        &toolbox_dir().join("node"),
    )
}

#[test]
fn manifests_pass_the_kubernetes_api_schemas() {
    let dir = tempdir("schemas");
    for overlay in ["base", "overlays/example", "overlays/persistent-state"] {
        let docs = render(overlay);
        let (monitors, core): (Vec<&Value>, Vec<&Value>) =
            docs.iter().partition(|d| d["kind"] == "ServiceMonitor");
        let file = dir.join(format!("{}.yaml", overlay.replace('/', "_")));
        let out = kubernetes_validate(&core, &file);
        let report = describe(&out);
        assert!(out.status.success(), "{overlay}: {report}");
        let passed = report.matches(" passed for resource ").count();
        assert_eq!(
            passed,
            core.len(),
            "{overlay}: every object checked: {report}"
        );
        if overlay == "overlays/example" {
            assert_eq!(
                monitors.len(),
                1,
                "the example overlay adds the ServiceMonitor"
            );
            let out = servicemonitor_validate(&monitors, &dir.join("monitors.json"));
            assert!(out.status.success(), "ServiceMonitor: {}", describe(&out));
        }
    }

    // The persistent-state overlay swaps the state emptyDir for its claim, one replica.
    let docs = render("overlays/persistent-state");
    let deployment = &find(&docs, "Deployment", "dyegate")["spec"];
    let state = deployment["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "state")
        .expect("state volume");
    assert_eq!(
        state["persistentVolumeClaim"]["claimName"], "dyegate-state",
        "{state:?}"
    );
    assert!(state["emptyDir"].is_null(), "{state:?}");
    assert_eq!(
        (
            deployment["replicas"].as_i64(),
            &deployment["strategy"]["type"]
        ),
        (Some(1), &"Recreate".into())
    );
    find(&docs, "PersistentVolumeClaim", "dyegate-state");

    // The validators do reject: an unknown field (strict mode) and a malformed scrape interval.
    let docs = render("base");
    let mut deployment = find(&docs, "Deployment", "dyegate").clone();
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] =
        deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].clone();
    let out = kubernetes_validate(&[&deployment], &dir.join("bad.yaml"));
    assert!(!out.status.success(), "a typo passed: {}", describe(&out));
    let mut monitor = find(&render("overlays/example"), "ServiceMonitor", "dyegate").clone();
    monitor["spec"]["endpoints"][0]["interval"] = "fast".into();
    let out = servicemonitor_validate(&[&monitor], &dir.join("bad.json"));
    assert!(
        !out.status.success(),
        "interval: fast passed: {}",
        describe(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The gateway.yaml of the rendered ConfigMap, parsed.
fn shipped_gateway_yaml(docs: &[Value]) -> (String, Value) {
    let text = find(docs, "ConfigMap", "dyegate-gateway")["data"]["gateway.yaml"]
        .as_str()
        .expect("gateway.yaml")
        .to_string();
    let parsed = serde_yaml::from_str(&text).expect("gateway.yaml is YAML");
    (text, parsed)
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("not an integer: {v:?}"))
}

/// The example overlay, its gateway.yaml, and its pod spec.
fn example() -> (Vec<Value>, Value, Value) {
    let docs = render("overlays/example");
    let (_, gw) = shipped_gateway_yaml(&docs);
    let pod = find(&docs, "Deployment", "dyegate")["spec"]["template"]["spec"].clone();
    (docs, gw, pod)
}

#[test]
fn probes_drain_timing_and_security_match_the_gateway() {
    let (_, gw, pod) = example();
    let c = &pod["containers"][0];
    // Probes on the admin port: readiness = /readyz, liveness = /healthz.
    let admin_port = gw["admin"]["listen"].as_str().expect("admin.listen");
    let admin_port: i64 = admin_port
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let port_of = |name: &str| {
        c["ports"]
            .as_sequence()
            .expect("ports")
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| int(&p["containerPort"]))
    };
    assert_eq!(port_of("admin"), Some(admin_port));
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "admin");
    let proxy = gw["listen"][0].as_str().expect("listen");
    assert_eq!(
        port_of("http"),
        proxy.rsplit(':').next().and_then(|p| p.parse().ok())
    );
    // Drain: preStop, then SIGTERM; the pod must outlive grace_period + shutdown timeout.
    let pre_stop = int(&c["lifecycle"]["preStop"]["sleep"]["seconds"]);
    let grace = int(&gw["pingora"]["grace_period_seconds"]);
    let shutdown = int(&gw["pingora"]["graceful_shutdown_timeout_seconds"]);
    let termination = int(&pod["terminationGracePeriodSeconds"]);
    assert!(
        termination >= pre_stop + grace + shutdown,
        "terminationGracePeriodSeconds {termination} < preStop {pre_stop} + grace_period_seconds {grace} + graceful_shutdown_timeout_seconds {shutdown}"
    );
    // Non-root, read-only root filesystem, no privilege gain.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(c["resources"]["requests"].is_mapping() && c["resources"]["limits"].is_mapping());
}

#[test]
fn written_paths_are_on_writable_volumes_and_routes_on_a_directory_mount() {
    let (_, gw, pod) = example();
    let c = &pod["containers"][0];
    // Every path the gateway writes lies on a writable (emptyDir) mount; the routes file lies
    // in a ConfigMap mounted as a whole directory (subPath mounts are never updated).
    let mounts = c["volumeMounts"].as_sequence().expect("volumeMounts");
    let volume = |name: &Value| {
        pod["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .find(|v| &v["name"] == name)
            .expect("volume")
    };
    let mount_of = |path: &str| {
        mounts
            .iter()
            .filter(|m| {
                path.starts_with(&format!("{}/", m["mountPath"].as_str().expect("mountPath")))
            })
            .max_by_key(|m| m["mountPath"].as_str().map(str::len))
            .unwrap_or_else(|| panic!("{path} is on no volume (the root filesystem is read-only)"))
    };
    for path in [
        format!("{}/x", gw["state_dir"].as_str().expect("state_dir")),
        gw["reload"]["audit_log"]
            .as_str()
            .expect("audit_log")
            .to_string(),
        gw["pingora"]["pid_file"]
            .as_str()
            .expect("pid_file")
            .to_string(),
        gw["pingora"]["upgrade_sock"]
            .as_str()
            .expect("upgrade_sock")
            .to_string(),
    ] {
        let m = mount_of(&path);
        assert!(volume(&m["name"])["emptyDir"].is_mapping(), "{path}: {m:?}");
        assert_ne!(m["readOnly"], true, "{path}");
    }
    let routes = mount_of(gw["routes"].as_str().expect("routes"));
    assert!(
        routes["subPath"].is_null(),
        "routes mounted with subPath: {routes:?}"
    );
    assert_eq!(
        volume(&routes["name"])["configMap"]["name"],
        "dyegate-routes"
    );
    let token = mount_of(gw["admin"]["token_file"].as_str().expect("token_file"));
    assert_eq!(
        volume(&token["name"])["secret"]["secretName"],
        "dyegate-admin-token"
    );
}

#[test]
fn the_admin_port_stays_in_cluster_and_selectors_reach_the_pods() {
    let (docs, _, _) = example();
    // NetworkPolicy: the admin port admits in-cluster peers only (selectors, no ipBlock).
    let policy = &find(&docs, "NetworkPolicy", "dyegate")["spec"];
    let admin_rules: Vec<&Value> = policy["ingress"]
        .as_sequence()
        .expect("ingress")
        .iter()
        .filter(|r| {
            r["ports"]
                .as_sequence()
                .is_some_and(|p| p.iter().any(|p| p["port"] == "admin"))
        })
        .collect();
    assert_eq!(admin_rules.len(), 1, "{policy:?}");
    let from = admin_rules[0]["from"]
        .as_sequence()
        .expect("admin port: from");
    assert!(
        !from.is_empty() && from.iter().all(|f| f["ipBlock"].is_null()),
        "{from:?}"
    );

    // Selectors: the PDB, the Services and the ServiceMonitor reach the pods.
    let pod_labels =
        &find(&docs, "Deployment", "dyegate")["spec"]["template"]["metadata"]["labels"];
    let selects = |selector: &Value, labels: &Value| {
        selector
            .as_mapping()
            .expect("selector")
            .iter()
            .all(|(k, v)| &labels[k.as_str().expect("key")] == v)
    };
    assert!(selects(
        &find(&docs, "PodDisruptionBudget", "dyegate")["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    let admin_svc = find(&docs, "Service", "dyegate-admin");
    assert!(selects(&admin_svc["spec"]["selector"], pod_labels));
    assert!(selects(
        &find(&docs, "Service", "dyegate")["spec"]["selector"],
        pod_labels
    ));
    let monitor = &find(&docs, "ServiceMonitor", "dyegate")["spec"];
    assert!(selects(
        &monitor["selector"]["matchLabels"],
        &admin_svc["metadata"]["labels"]
    ));
    assert_eq!(
        monitor["endpoints"][0]["port"],
        admin_svc["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["endpoints"][0]["path"], "/metrics");
}

/// Lays out `routes` the way kubelet mounts a ConfigMap: `<dir>/..<version>/routes.yaml`,
/// `..data -> ..<version>`, `routes.yaml -> ..data/routes.yaml`; a later version is swapped in
/// atomically (`..data_tmp` renamed over `..data`).
fn configmap_version(dir: &Path, version: &str, routes: &str) {
    let payload = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&payload).expect("payload dir");
    std::fs::write(payload.join("routes.yaml"), routes).expect("write");
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).expect("..data_tmp");
    std::fs::rename(&tmp, dir.join("..data")).expect("..data swap");
    if !dir.join("routes.yaml").exists() {
        std::os::unix::fs::symlink("..data/routes.yaml", dir.join("routes.yaml")).expect("link");
    }
}

/// The base's routes.yaml with its targets replaced by `stable` and `canary`, canary at
/// `canary_weight`.
fn shipped_routes(
    docs: &[Value],
    stable: &Upstream,
    canary: &Upstream,
    canary_weight: u32,
) -> String {
    let text = find(docs, "ConfigMap", "dyegate-routes")["data"]["routes.yaml"]
        .as_str()
        .expect("routes.yaml")
        .to_string();
    assert!(
        text.contains("weight: 100 }") && text.contains("weight: 0 }"),
        "{text}"
    );
    text.replace("10.96.0.10:8080", &stable.target())
        .replace("10.96.0.11:8080", &canary.target())
        .replace(
            "weight: 100 }",
            &format!("weight: {} }}", 100 - canary_weight),
        )
        .replace("weight: 0 }", &format!("weight: {canary_weight} }}"))
}

#[tokio::test]
async fn the_shipped_config_serves_probes_and_reloads_from_the_mounted_configmap() {
    let docs = render("base");
    let (text, _) = shipped_gateway_yaml(&docs);
    let stable = Upstream::start("stable");
    let canary = Upstream::start("canary");
    let cfg = GatewayConfig::new("routes: []\n");
    let root = cfg.dir().to_path_buf();
    // The pod's paths mapped into the test's dir; the ports to free loopback ones.
    for dir in ["etc-dyegate-routes", "etc-dyegate-admin", "var-lib-dyegate"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    std::fs::write(root.join("etc-dyegate-admin/token"), "t0ken\n").expect("token");
    configmap_version(
        &root.join("etc-dyegate-routes"),
        "v1",
        &shipped_routes(&docs, &stable, &canary, 0),
    );
    let gateway = text
        .replace("0.0.0.0:8080", &cfg.proxy_addr().to_string())
        .replace("0.0.0.0:9901", &cfg.admin_addr().to_string())
        .replace(
            "/etc/dyegate-routes",
            &root.join("etc-dyegate-routes").display().to_string(),
        )
        .replace(
            "/etc/dyegate-admin",
            &root.join("etc-dyegate-admin").display().to_string(),
        )
        .replace(
            "/var/lib/dyegate",
            &root.join("var-lib-dyegate").display().to_string(),
        )
        .replace("grace_period_seconds: 30", "grace_period_seconds: 1");
    assert!(
        !gateway.contains("/etc/") && !gateway.contains("/var/"),
        "{gateway}"
    );
    cfg.write(GATEWAY_FILE, &gateway);
    let gw = cfg.start();
    let admin = gw.admin_addr();

    for probe in ["/readyz", "/healthz"] {
        let resp = Req::get(probe).send(admin).await;
        assert_eq!(resp.status, 200, "{probe}: {}", resp.text());
    }
    assert_eq!(Req::get("/metrics").send(admin).await.status, 401);
    let metrics = Req::get("/metrics")
        .header("authorization", "Bearer t0ken")
        .send(admin)
        .await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text().contains("dyegate_routing_version 1"),
        "{}",
        metrics.text()
    );
    assert_eq!(
        Req::get("/").send(gw.addr()).await.upstream(),
        Some("stable")
    );

    // `kubectl apply` of a new routes.yaml: kubelet swaps `..data`; the watch reloads.
    configmap_version(
        &root.join("etc-dyegate-routes"),
        "v2",
        &shipped_routes(&docs, &stable, &canary, 100),
    );
    let moved = wait_until_async(Duration::from_secs(10), || async {
        Req::get("/").send(gw.addr()).await.upstream() == Some("canary")
    })
    .await;
    assert!(moved, "the ..data swap was not applied\n{}", gw.logs());
    let state = root.join("var-lib-dyegate");
    assert!(
        state.join("history.json").exists() && state.join("audit.log").exists(),
        "state written to state_dir"
    );
}
