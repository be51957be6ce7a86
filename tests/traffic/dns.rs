//! Upstreams by DNS name (issue 26), end to end: a real dnsmasq on a loopback port answers for
//! `orders.test`, whose records the tests change (its hosts file, re-read on SIGHUP); the
//! upstreams listen on one port at 127.0.0.1, 127.0.0.2 and 127.0.0.3. A name's addresses are
//! all targets; an address added gets traffic and one removed is drained, without a new routing
//! version; a stopped DNS server leaves the last addresses serving, the failure counted and
//! shown; `dyegate check --resolve` names a name that does not resolve.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use dyegate_suite::dns::Dnsmasq;
use dyegate_suite::metrics::Scrape;
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{
    free_port, poll_until, wait_until, wait_until_async, Dyegate, GatewayConfig, Req,
};
use http::StatusCode;
use serde_json::Value;

/// Long enough for a debug build on a loaded two-core machine (a lookup every 200 ms).
const SETTLE: Duration = Duration::from_secs(30);

const NAME: &str = "orders.test";

/// Three upstreams on one port, at 127.0.0.1 (`a`), 127.0.0.2 (`b`) and 127.0.0.3 (`c`).
struct Upstreams {
    port: u16,
    ups: Vec<FaultyUpstream>,
}

impl Upstreams {
    fn start(faults: [Fault; 3]) -> Upstreams {
        let port = free_port();
        let ups = (["a", "b", "c"].iter().zip(faults).enumerate())
            .map(|(i, (name, fault))| {
                let addr = SocketAddr::from(([127, 0, 0, i as u8 + 1], port));
                FaultyUpstream::start_on(addr, name, fault)
                    .unwrap_or_else(|e| panic!("binding upstream {name} on {addr}: {e}"))
            })
            .collect();
        Upstreams { port, ups }
    }

    fn get(&self, name: &str) -> &FaultyUpstream {
        let i = ["a", "b", "c"]
            .iter()
            .position(|n| *n == name)
            .expect("a, b or c");
        &self.ups[i]
    }
}

/// The records of `orders.test` for upstreams `names` (`a` is 127.0.0.1 ...).
fn records(names: &[&str]) -> Vec<(&'static str, &'static str)> {
    names
        .iter()
        .map(|n| match *n {
            "a" => (NAME, "127.0.0.1"),
            "b" => (NAME, "127.0.0.2"),
            "c" => (NAME, "127.0.0.3"),
            other => panic!("no upstream {other}"),
        })
        .collect()
}

fn gateway(dns: &Dnsmasq, routes: &str) -> GatewayConfig {
    GatewayConfig::new(routes).gateway_extra(&format!(
        "dns: {{ interval_ms: 200, nameservers: [\"{}\"] }}",
        dns.addr()
    ))
}

fn orders_routes(port: u16) -> String {
    format!(
        "upstreams:\n  orders: {{ targets: [\"{NAME}:{port}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: orders, weight: 1 }}]\n"
    )
}

/// The upstreams that answered `n` requests through the gateway (each must answer 200).
async fn spread(gw: &Dyegate, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let resp = Req::get("/").send(gw.addr()).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        seen.push(resp.upstream().expect("x-upstream").to_owned());
    }
    seen
}

fn distinct(seen: &[String]) -> BTreeSet<&str> {
    seen.iter().map(String::as_str).collect()
}

/// The `orders.test` entry of group `orders` in `/upstreams`.
async fn name_entry(gw: &Dyegate) -> Value {
    let ups = gw.admin_get("/upstreams").await;
    let group = (ups["groups"].as_array().expect("groups").iter())
        .find(|g| g["name"] == "orders")
        .cloned()
        .expect("group orders");
    group["names"][0].clone()
}

fn addresses(entry: &Value) -> Vec<String> {
    (entry["addresses"].as_array().into_iter().flatten())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// Waits until `/upstreams` shows `orders.test` with exactly `want` (upstream names).
async fn wait_for_addresses(gw: &Dyegate, ups: &Upstreams, want: &[&str]) {
    let want: Vec<String> = (want.iter())
        .map(|n| ups.get(n).addr().to_string())
        .collect();
    if let Err(last) = poll_until(SETTLE, || name_entry(gw), |e| addresses(e) == want).await {
        panic!(
            "orders.test never showed {want:?}; last: {last:#}\n{}",
            gw.logs()
        );
    }
}

fn dns_series(scrape: &Scrape, family: &str) -> f64 {
    scrape.value(family, &[("name", NAME), ("upstream", "orders")])
}

#[tokio::test]
async fn every_address_of_a_name_gets_traffic_and_a_new_one_joins_without_a_new_version() {
    let ups = Upstreams::start([Fault::None, Fault::None, Fault::None]);
    let dns = Dnsmasq::start(&records(&["a", "b"]));
    let gw = gateway(&dns, &orders_routes(ups.port)).start();
    // Asked before the gateway listens: both addresses serve from the first request.
    let seen = spread(&gw, 10).await;
    assert_eq!(distinct(&seen), BTreeSet::from(["a", "b"]), "{seen:?}");
    let version = gw.version().await;
    let entry = name_entry(&gw).await;
    assert_eq!(entry["port"], ups.port);
    assert!(entry["last_resolve"].is_string(), "{entry:#}");
    assert!(entry["last_error"].is_null(), "{entry:#}");
    let before = gw.metrics().await;
    assert_eq!(dns_series(&before, "dyegate_dns_addresses"), 2.0);
    assert_eq!(dns_series(&before, "dyegate_dns_changes_total"), 0.0);

    dns.set_records(&records(&["a", "b", "c"]));
    wait_for_addresses(&gw, &ups, &["a", "b", "c"]).await;
    let seen = spread(&gw, 9).await;
    assert_eq!(distinct(&seen), BTreeSet::from(["a", "b", "c"]), "{seen:?}");
    assert_eq!(gw.version().await, version, "no new routing version");
    let after = gw.metrics().await;
    assert_eq!(dns_series(&after, "dyegate_dns_changes_total"), 1.0);
    assert_eq!(dns_series(&after, "dyegate_dns_addresses"), 3.0);
    let log = gw.logs();
    assert!(
        log.contains(&format!(
            "DNS name {NAME} (upstream group orders): added 127.0.0.3, removed none; now 127.0.0.1, 127.0.0.2, 127.0.0.3"
        )),
        "{log}"
    );
    // A reload with the same name keeps its addresses: all three serve at once, no 503.
    let routes = orders_routes(ups.port).replace("name: all", "name: all2");
    gw.config().write_and_rename("routes.yaml", &routes);
    gw.wait_for_status(SETTLE, "the reload", |s| {
        s["version"].as_u64() > Some(version)
    })
    .await;
    let seen = spread(&gw, 9).await;
    assert_eq!(distinct(&seen), BTreeSet::from(["a", "b", "c"]), "{seen:?}");
}

#[tokio::test]
async fn an_address_that_disappears_is_drained_not_cut() {
    // `b` holds every request until released: one is in flight when its address goes.
    let ups = Upstreams::start([Fault::None, Fault::Hold, Fault::None]);
    let dns = Dnsmasq::start(&records(&["a", "b"]));
    let gw = gateway(&dns, &orders_routes(ups.port)).start();
    let version = gw.version().await;
    let (addr, b) = (gw.addr(), ups.get("b"));
    // Round-robin alternates a and b: one request at a time until one is held at b.
    let mut held = None;
    for _ in 0..4 {
        let task = tokio::spawn(async move { Req::get("/").send(addr).await });
        let landed = wait_until_async(SETTLE, || {
            let done = task.is_finished() || b.held() > 0;
            async move { done }
        })
        .await;
        assert!(landed, "a request neither answered nor held\n{}", gw.logs());
        if b.held() > 0 {
            held = Some(task);
            break;
        }
        let resp = task.await.expect("request task");
        assert_eq!(resp.upstream(), Some("a"), "{}", resp.text());
    }
    let held = held.expect("a request held at b");
    let b_requests = b.request_count();

    dns.set_records(&records(&["a"]));
    wait_for_addresses(&gw, &ups, &["a"]).await;
    // The held request's target is shown as draining while it runs.
    let ups_json = gw.admin_get("/upstreams").await;
    let draining: Vec<&Value> = (ups_json["groups"][0]["targets"]
        .as_array()
        .expect("targets"))
    .iter()
    .filter(|t| t["state"] == "draining")
    .collect();
    assert_eq!(draining.len(), 1, "{ups_json:#}");
    assert_eq!(draining[0]["addr"], ups.get("b").addr().to_string());
    assert_eq!(draining[0]["in_flight"], 1);

    let seen = spread(&gw, 10).await;
    assert_eq!(distinct(&seen), BTreeSet::from(["a"]), "{seen:?}");
    assert_eq!(b.request_count(), b_requests, "no new request went to b");
    assert_eq!(b.held(), 1, "b's request still in flight");

    b.release();
    let resp = held.await.expect("request task");
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.upstream(), Some("b"), "finished where it started");
    assert_eq!(gw.version().await, version, "no new routing version");
    let m = gw.metrics().await;
    assert_eq!(dns_series(&m, "dyegate_dns_changes_total"), 1.0);
}

#[tokio::test]
async fn a_stopped_dns_server_leaves_the_last_addresses_serving_and_is_shown() {
    let ups = Upstreams::start([Fault::None, Fault::None, Fault::None]);
    let mut dns = Dnsmasq::start(&records(&["a", "b"]));
    let gw = gateway(&dns, &orders_routes(ups.port)).start();
    assert_eq!(distinct(&spread(&gw, 4).await), BTreeSet::from(["a", "b"]));

    dns.stop();
    let failed = gw
        .wait_for_metrics(SETTLE, "a failed lookup counted", |m| {
            dns_series(m, "dyegate_dns_resolve_failures_total") >= 1.0
        })
        .await;
    assert_eq!(dns_series(&failed, "dyegate_dns_addresses"), 2.0);
    let entry = name_entry(&gw).await;
    assert!(entry["last_error"]["error"].is_string(), "{entry:#}");
    assert!(entry["failures_in_a_row"].as_u64() >= Some(1), "{entry:#}");
    assert_eq!(
        addresses(&entry),
        [
            ups.get("a").addr().to_string(),
            ups.get("b").addr().to_string()
        ],
        "the last addresses are kept"
    );
    let status = gw.status().await;
    assert_eq!(status["dns"]["failing"][0]["name"], NAME, "{status:#}");
    // Still both, for as long as the server is down.
    assert_eq!(distinct(&spread(&gw, 10).await), BTreeSet::from(["a", "b"]));
    let log = gw.logs();
    assert!(
        log.contains(&format!(
            "DNS lookup of {NAME} (upstream group orders) failed: "
        )),
        "{log}"
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_yet_answers_503_until_it_does() {
    let ups = Upstreams::start([Fault::None, Fault::None, Fault::None]);
    let dns = Dnsmasq::start(&[]);
    let gw = gateway(&dns, &orders_routes(ups.port)).start();
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.text().lines().next(),
        Some("503 Service Unavailable: no address for upstream group orders: its DNS names have not resolved")
    );
    let entry = name_entry(&gw).await;
    assert_eq!(
        entry["last_error"]["error"], "NXDOMAIN: the name does not exist",
        "{entry:#}"
    );
    dns.set_records(&records(&["c"]));
    wait_for_addresses(&gw, &ups, &["c"]).await;
    assert_eq!(distinct(&spread(&gw, 3).await), BTreeSet::from(["c"]));
}

#[tokio::test]
async fn check_resolve_names_a_name_that_does_not_resolve() {
    let dns = Dnsmasq::start(&records(&["a"]));
    let routes = "upstreams:\n  orders: { targets: [\"orders.test:8080\", \"nowhere.test:8080\"] }\nroutes:\n  - name: all\n    split: [{ upstream: orders, weight: 1 }]\n";
    let cfg = gateway(&dns, routes);
    let plain = cfg.check();
    assert_eq!(plain.code, Some(0), "{plain}");
    assert_eq!(plain.stdout, "OK: 1 routes, 1 upstreams\n", "{plain}");
    let resolved = cfg.cli(&["check", "--resolve"]);
    assert_eq!(resolved.code, Some(1), "{resolved}");
    assert_eq!(
        resolved.stdout,
        format!(
            "{}:2:43: upstreams.orders.targets[1]: found \"nowhere.test:8080\", whose name does not resolve (NXDOMAIN: the name does not exist), expected a name with an A or AAAA record\n",
            cfg.routes_file().display()
        ),
        "{resolved}"
    );
    // Every name resolves (once dnsmasq has read its records again): --resolve passes.
    dns.set_records(&[("orders.test", "127.0.0.1"), ("nowhere.test", "127.0.0.2")]);
    let ok = wait_until(SETTLE, || cfg.cli(&["check", "--resolve"]).code == Some(0));
    assert!(ok, "{}", cfg.cli(&["check", "--resolve"]));
}

/// `routes.yaml` with `orders` (on `orders.test`) for every path and one more group on `name`
/// for `/pay`.
fn routes_with_pay(port: u16, name: &str) -> String {
    format!(
        "upstreams:\n  orders: {{ targets: [\"{NAME}:{port}\"] }}\n  pay: {{ targets: [\"{name}:{port}\"] }}\nroutes:\n  - name: pay\n    match: {{ path_prefix: /pay }}\n    split: [{{ upstream: pay, weight: 1 }}]\n  - name: all\n    split: [{{ upstream: orders, weight: 1 }}]\n"
    )
}

/// The `pay` group's name entry in `/upstreams`.
async fn pay_entry(gw: &Dyegate) -> Value {
    let ups = gw.admin_get("/upstreams").await;
    let group = (ups["groups"].as_array().expect("groups").iter())
        .find(|g| g["name"] == "pay")
        .cloned()
        .unwrap_or_else(|| panic!("no group pay in {ups:#}"));
    group["names"][0].clone()
}

#[tokio::test]
async fn a_reload_that_brings_a_new_name_resolves_it_before_the_table_serves() {
    let ups = Upstreams::start([Fault::None, Fault::None, Fault::None]);
    // `pay.test` is in DNS from the start; the gateway does not know it until the reload.
    let dns = Dnsmasq::start(&[(NAME, "127.0.0.1"), ("pay.test", "127.0.0.2")]);
    let gw = gateway(&dns, &orders_routes(ups.port))
        .gateway_extra("reload: { watch: false }")
        .start();
    let version = gw.version().await;

    // File edit + SIGHUP: once /status shows the new version, the table serves, and the
    // name's addresses were asked before it did: its first request is answered.
    gw.config()
        .write_and_rename("routes.yaml", &routes_with_pay(ups.port, "pay.test"));
    gw.signal(libc::SIGHUP);
    gw.wait_for_status(SETTLE, "the reload", |s| {
        s["version"].as_u64() > Some(version)
    })
    .await;
    let resp = Req::get("/pay").send(gw.addr()).await;
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "{}\n{}",
        resp.text(),
        gw.logs()
    );
    assert_eq!(resp.upstream(), Some("b"));
    assert_eq!(
        addresses(&pay_entry(&gw).await),
        [ups.get("b").addr().to_string()]
    );
    let log = gw.logs();
    assert!(
        log.contains("reload: 1 new DNS name(s) asked before the table serves"),
        "{log}"
    );
    assert!(
        log.contains("DNS name pay.test (upstream group pay) resolves to 127.0.0.2"),
        "{log}"
    );

    // A new name that does not resolve: applied anyway, said in the answer and the log, shown
    // in /upstreams and counted; its route answers 503 until it resolves, the others serve.
    gw.config()
        .write_and_rename("routes.yaml", &routes_with_pay(ups.port, "nowhere.test"));
    let (code, answer) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{answer:#}");
    assert_eq!(answer["result"], "applied", "{answer:#}");
    let warning = "DNS name nowhere.test (upstream group pay) does not resolve (NXDOMAIN: the name does not exist): no address from it until it does; asked again in the background";
    assert_eq!(
        answer["warnings"],
        serde_json::json!([warning]),
        "{answer:#}"
    );
    let log = gw.logs();
    assert!(
        log.contains(&format!("reload (api): applied, but {warning}")),
        "{log}"
    );
    let resp = Req::get("/pay").send(gw.addr()).await;
    assert_eq!(
        resp.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        resp.text()
    );
    assert_eq!(
        Req::get("/").send(gw.addr()).await.upstream(),
        Some("a"),
        "the other routes serve"
    );
    let entry = pay_entry(&gw).await;
    assert_eq!(
        entry["last_error"]["error"], "NXDOMAIN: the name does not exist",
        "{entry:#}"
    );
    let m = gw.metrics().await;
    let failures = m.value(
        "dyegate_dns_resolve_failures_total",
        &[("name", "nowhere.test"), ("upstream", "pay")],
    );
    assert!(failures >= 1.0, "{failures}");

    // It resolves later: the background service picks it up.
    dns.set_records(&[
        (NAME, "127.0.0.1"),
        ("pay.test", "127.0.0.2"),
        ("nowhere.test", "127.0.0.3"),
    ]);
    let served = wait_until_async(SETTLE, || async {
        Req::get("/pay").send(gw.addr()).await.upstream() == Some("c")
    })
    .await;
    assert!(served, "{}", gw.logs());
}

#[tokio::test]
async fn a_reload_never_waits_long_for_a_nameserver_that_is_gone() {
    let ups = Upstreams::start([Fault::None, Fault::None, Fault::None]);
    let mut dns = Dnsmasq::start(&records(&["a"]));
    let gw = gateway(&dns, &orders_routes(ups.port)).start();
    dns.stop();
    gw.config()
        .write_and_rename("routes.yaml", &routes_with_pay(ups.port, "pay.test"));
    // Bounded by the lookup's own limit (two tries of two seconds, five seconds at most): the
    // answer comes, the table is applied, the name is said not to resolve.
    let (code, answer) = gw.admin_post("/reload", None).await;
    assert_eq!(code, StatusCode::OK, "{answer:#}");
    assert_eq!(answer["result"], "applied", "{answer:#}");
    let warning = answer["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.starts_with("DNS name pay.test (upstream group pay)"),
        "{answer:#}"
    );
    // The names known before keep their addresses.
    assert_eq!(Req::get("/").send(gw.addr()).await.upstream(), Some("a"));
}
