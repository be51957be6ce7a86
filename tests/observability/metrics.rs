//! Prometheus metrics end to end: every series a routes file can produce exists at 0 from
//! startup; known traffic (tagged, split, sticky, unknown tags under both policies, no route, a
//! dead target) yields exactly the counts it should; and no client can add series, however many
//! distinct tags it sends. Reloads: tests/reload/metrics.rs.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use dyegate_suite::gateway::{gateway_yaml, GATEWAY_FILE};
use dyegate_suite::metrics::{
    decisions_total, duration_series, reloads_total, requests_total, upstream_errors_total, Scrape,
    Series, DECISIONS, DURATION, METRICS_TIMEOUT, RELOADS, REQUESTS, UPSTREAM_ERRORS, VERSION,
};
use dyegate_suite::{free_addr, upstream_groups, Conn, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The classes of a request routed to a group: an answer that broke after its head is `error`.
const ROUTED_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];
const REASONS: [&str; 4] = ["tag", "split", "sticky", "fallback"];
const ERROR_KINDS: [&str; 4] = ["connect_refused", "timeout", "reset", "other"];
/// Every trigger is pre-created, the rollout steps and etcd revisions included.
const TRIGGERS: [&str; 7] = [
    "startup", "file", "sighup", "api", "rollback", "rollout", "etcd",
];
const RESULTS: [&str; 4] = ["applied", "no_op", "failed", "rollback"];

const SHOP: &str = "shop.example.com";
const API: &str = "api.example.com";
const LEGACY: &str = "legacy.example.com";

/// Three routes that between them make every kind of decision:
/// - `shop`: tag `canary` → shop-canary, unknown tags routed as untagged, split 3:1;
/// - `api`: tag `beta` → api-canary, unknown tags refused (503), sticky 1:1 split on
///   `x-user-id`;
/// - `legacy`: one group whose only target refuses connections (502).
struct Fixture {
    _ups: Vec<Upstream>,
    dead: SocketAddr,
    /// group → its one target, as written in routes.yaml.
    targets: BTreeMap<&'static str, String>,
    gw: Dyegate,
}

const GROUPS: [&str; 4] = ["shop-stable", "shop-canary", "api-stable", "api-canary"];

impl Fixture {
    fn start() -> Self {
        let ups: Vec<Upstream> = GROUPS.iter().map(|g| Upstream::start(g)).collect();
        let dead = free_addr();
        let named: Vec<(&str, &Upstream)> = GROUPS.iter().copied().zip(ups.iter()).collect();
        let mut targets: BTreeMap<&'static str, String> = GROUPS
            .iter()
            .copied()
            .zip(ups.iter().map(Upstream::target))
            .collect();
        targets.insert("legacy", dead.to_string());
        let gw = Dyegate::start(&format!(
            "{groups}  legacy: {{ targets: [\"{dead}\"] }}
routes:
  - name: shop
    match: {{ host: {SHOP} }}
    dye:
      tags: {{ canary: shop-canary }}
      on_unknown_tag: base
    split:
      - {{ upstream: shop-stable, weight: 3 }}
      - {{ upstream: shop-canary, weight: 1 }}
  - name: api
    match: {{ host: {API} }}
    dye:
      tags: {{ beta: api-canary }}
      on_unknown_tag: reject
    split:
      - {{ upstream: api-stable, weight: 1 }}
      - {{ upstream: api-canary, weight: 1 }}
    sticky: header:x-user-id
  - name: legacy
    match: {{ host: {LEGACY} }}
    split: [{{ upstream: legacy, weight: 1 }}]
",
            groups = upstream_groups(&named),
        ));
        Self {
            _ups: ups,
            dead,
            targets,
            gw,
        }
    }
}

/// A route as the metrics see it: its groups, each with the tags that name it.
struct RouteShape {
    name: &'static str,
    groups: &'static [(&'static str, &'static [&'static str])],
}

const SHAPES: [RouteShape; 3] = [
    RouteShape {
        name: "shop",
        groups: &[("shop-stable", &[]), ("shop-canary", &["canary"])],
    },
    RouteShape {
        name: "api",
        groups: &[("api-stable", &[]), ("api-canary", &["beta"])],
    },
    RouteShape {
        name: "legacy",
        groups: &[("legacy", &[])],
    },
];

fn keys(scrape: &Scrape, name: &str) -> BTreeSet<Series> {
    scrape.family(name).into_keys().collect()
}

/// The series the three routes must have from startup: per route and group, the tags `none`
/// and `other` plus the tags naming that group, times the status classes and `error`; the 503 of a refused
/// unknown tag (group `none`, tag `other`) per route; the no-route series; four reasons per route
/// and group plus `reject`; four error kinds per target.
fn required_series(targets: &BTreeMap<&str, String>) -> [(&'static str, BTreeSet<Series>); 4] {
    let mut req = BTreeSet::new();
    let mut dec = BTreeSet::new();
    let mut count = BTreeSet::new();
    for route in &SHAPES {
        for (group, tags) in route.groups {
            for tag in ["none", "other"].iter().chain(tags.iter()) {
                for class in ROUTED_CLASSES {
                    req.insert(requests_total(route.name, group, tag, class));
                }
            }
            for reason in REASONS {
                dec.insert(decisions_total(route.name, group, reason));
            }
            count.insert(duration_series("count", route.name, group));
        }
        req.insert(requests_total(route.name, "none", "other", "5xx"));
        dec.insert(decisions_total(route.name, "none", "reject"));
    }
    for class in CLASSES {
        req.insert(requests_total("none", "none", "none", class));
    }
    let errors = targets
        .iter()
        .flat_map(|(group, target)| {
            ERROR_KINDS.map(|kind| upstream_errors_total(group, target, kind))
        })
        .collect();
    [
        (REQUESTS, req),
        (DECISIONS, dec),
        (UPSTREAM_ERRORS, errors),
        ("dyegate_request_duration_seconds_count", count),
    ]
}

/// Whether a `requests_total` series is one the three routes may ever produce: a route (or
/// `none`), one of its groups (or `none` for a refused tag), a tag configured for that group
/// (or `none`/`other`) and a status class. Anything else would be cardinality a client made.
fn may_exist(s: &Series) -> bool {
    let (Some(route), Some(group), Some(tag), Some(class)) = (
        s.label("route"),
        s.label("upstream_group"),
        s.label("env_tag"),
        s.label("status_class"),
    ) else {
        return false;
    };
    let routed = route != "none" && group != "none";
    let classes: &[&str] = if routed { &ROUTED_CLASSES } else { &CLASSES };
    if !classes.contains(&class) || s.labels.len() != 4 {
        return false;
    }
    if route == "none" {
        return group == "none" && tag == "none";
    }
    let Some(shape) = SHAPES.iter().find(|r| r.name == route) else {
        return false;
    };
    if group == "none" {
        return tag == "other";
    }
    shape
        .groups
        .iter()
        .any(|(g, tags)| *g == group && (tag == "none" || tag == "other" || tags.contains(&tag)))
}

#[tokio::test]
async fn every_configured_series_exists_at_zero_from_startup() {
    let fx = Fixture::start();
    let m = fx.gw.metrics().await;

    for (family, want) in required_series(&fx.targets) {
        let have = keys(&m, family);
        let missing: Vec<String> = want.difference(&have).map(ToString::to_string).collect();
        assert!(
            missing.is_empty(),
            "{family} at startup lacks {missing:#?}\nit has:\n{}",
            m.dump(family)
        );
        for (series, value) in m.family(family) {
            assert_eq!(value, 0.0, "{series} at startup");
        }
    }
    // The label values of request series are the configured ones, nothing else; the other
    // families are exactly the required ones.
    let strays: Vec<String> = keys(&m, REQUESTS)
        .iter()
        .filter(|s| !may_exist(s))
        .map(ToString::to_string)
        .collect();
    assert!(strays.is_empty(), "unexpected series: {strays:#?}");
    for (family, want) in required_series(&fx.targets).into_iter().skip(1) {
        assert_eq!(
            keys(&m, family).len(),
            want.len(),
            "{family}:\n{}",
            m.dump(family)
        );
    }
    // Every histogram bucket and sum is there too, at 0.
    let buckets = m.family(&format!("{DURATION}_bucket"));
    assert_eq!(
        buckets.len(),
        5 * 15,
        "5 route/group pairs x (14 buckets + +Inf)"
    );
    assert!(buckets.values().all(|v| *v == 0.0));
    assert_eq!(m.family(&format!("{DURATION}_sum")).len(), 5);

    assert_eq!(m.kind(REQUESTS), Some("counter"));
    assert_eq!(m.kind(DECISIONS), Some("counter"));
    assert_eq!(m.kind(UPSTREAM_ERRORS), Some("counter"));
    assert_eq!(m.kind(DURATION), Some("histogram"));
    assert_eq!(m.kind(VERSION), Some("gauge"));

    assert_eq!(m.value(VERSION, &[]), 1.0);
    let mut want_reloads = BTreeMap::new();
    want_reloads.insert(reloads_total("startup", "applied"), 1.0);
    m.assert_family(RELOADS, &want_reloads);
    assert_eq!(m.family(RELOADS).len(), TRIGGERS.len() * RESULTS.len());
    assert!(m.value("dyegate_last_reload_success_timestamp_seconds", &[]) > 1.6e9);
    assert_eq!(m.value("dyegate_spans_dropped_total", &[]), 0.0);
    assert_eq!(m.value("dyegate_access_log_dropped_total", &[]), 0.0);
    // Process metrics: CPU (whole seconds, so maybe still 0), memory, open fds.
    assert!(m.value("process_cpu_seconds_total", &[]) >= 0.0);
    for name in ["process_resident_memory_bytes", "process_open_fds"] {
        assert!(m.value(name, &[]) > 0.0, "{name}");
    }
}

/// What the traffic should have counted, built request by request.
#[derive(Default)]
struct Expected {
    requests: BTreeMap<Series, f64>,
    decisions: BTreeMap<Series, f64>,
    errors: BTreeMap<Series, f64>,
    /// (route, group) → requests observed in the histogram.
    histogram: BTreeMap<(String, String), f64>,
    total: usize,
}

impl Expected {
    /// A request routed to `group` for `reason`, counted with tag label `tag`, answered with
    /// a status of `class`.
    fn routed(&mut self, route: &str, group: &str, tag: &str, class: &str, reason: &str) {
        *self
            .requests
            .entry(requests_total(route, group, tag, class))
            .or_default() += 1.0;
        *self
            .decisions
            .entry(decisions_total(route, group, reason))
            .or_default() += 1.0;
        *self
            .histogram
            .entry((route.to_owned(), group.to_owned()))
            .or_default() += 1.0;
        self.total += 1;
    }

    fn rejected(&mut self, route: &str) {
        *self
            .requests
            .entry(requests_total(route, "none", "other", "5xx"))
            .or_default() += 1.0;
        *self
            .decisions
            .entry(decisions_total(route, "none", "reject"))
            .or_default() += 1.0;
        self.total += 1;
    }

    fn no_route(&mut self, class: &str) {
        *self
            .requests
            .entry(requests_total("none", "none", "none", class))
            .or_default() += 1.0;
        self.total += 1;
    }

    fn upstream_error(&mut self, group: &str, target: &str, kind: &str) {
        *self
            .errors
            .entry(upstream_errors_total(group, target, kind))
            .or_default() += 1.0;
    }
}

/// The tag label a request routed to `group` of the fixture carries when it arrived with
/// `sent` (None: untagged): the split sets the tag of a tagged group, an unknown tag that stays
/// is `other`.
fn tag_label(group: &str, sent: Option<&str>) -> &'static str {
    match (group, sent) {
        ("shop-canary", _) => "canary",
        ("api-canary", _) => "beta",
        (_, None) => "none",
        (_, Some(_)) => "other",
    }
}

/// Sends `n` requests made by `req(i)` on one connection; returns the group (`x-upstream`) that
/// answered each and asserts the status.
async fn send_all(
    gw: &Dyegate,
    n: usize,
    status: StatusCode,
    req: impl Fn(usize) -> Req,
) -> Vec<String> {
    let mut conn = Conn::http1(gw.addr()).await;
    let mut groups = Vec::with_capacity(n);
    for i in 0..n {
        let resp = conn.send(req(i)).await;
        assert_eq!(resp.status, status, "request {i}: {}", resp.text());
        groups.push(resp.upstream().unwrap_or("").to_owned());
    }
    groups
}

fn tally(groups: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for g in groups {
        *counts.entry(g.as_str()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn known_traffic_gives_exact_counts() {
    let fx = Fixture::start();
    let gw = &fx.gw;
    let mut want = Expected::default();
    let shop = |path: &str| Req::get(path).host(SHOP);
    let api = || Req::get("/").host(API);

    // shop, untagged: the 3:1 smooth split is exact over whole cycles of 4.
    let got = send_all(gw, 8, StatusCode::OK, |_| shop("/")).await;
    assert_eq!(
        tally(&got),
        BTreeMap::from([("shop-canary", 2), ("shop-stable", 6)])
    );
    for g in &got {
        want.routed("shop", g, tag_label(g, None), "2xx", "split");
    }
    // shop, tagged canary.
    let got = send_all(gw, 5, StatusCode::OK, |_| {
        shop("/").header("x-env-tag", "canary")
    })
    .await;
    assert_eq!(tally(&got), BTreeMap::from([("shop-canary", 5)]));
    for g in &got {
        want.routed("shop", g, "canary", "2xx", "tag");
    }
    // shop, unknown tag under `base`: routed by the split (one more cycle), reason fallback.
    let got = send_all(gw, 4, StatusCode::OK, |_| {
        shop("/").header("x-env-tag", "blue")
    })
    .await;
    assert_eq!(
        tally(&got),
        BTreeMap::from([("shop-canary", 1), ("shop-stable", 3)])
    );
    for g in &got {
        want.routed("shop", g, tag_label(g, Some("blue")), "2xx", "fallback");
    }
    // shop, untagged, the upstream answers 418: counted as 4xx.
    let got = send_all(gw, 4, StatusCode::IM_A_TEAPOT, |_| shop("/status/418")).await;
    assert_eq!(
        tally(&got),
        BTreeMap::from([("shop-canary", 1), ("shop-stable", 3)])
    );
    for g in &got {
        want.routed("shop", g, tag_label(g, None), "4xx", "split");
    }

    // api, sticky by user: each user lands where its key hashes; counted as sticky.
    let got = send_all(gw, 6, StatusCode::OK, |i| {
        api().header("x-user-id", &format!("user-{i}"))
    })
    .await;
    for g in &got {
        want.routed("api", g, tag_label(g, None), "2xx", "sticky");
    }
    // api, no sticky key: the smooth 1:1 split, one each.
    let got = send_all(gw, 2, StatusCode::OK, |_| api()).await;
    assert_eq!(
        tally(&got),
        BTreeMap::from([("api-canary", 1), ("api-stable", 1)])
    );
    for g in &got {
        want.routed("api", g, tag_label(g, None), "2xx", "split");
    }
    // api, tagged beta.
    let got = send_all(gw, 2, StatusCode::OK, |_| api().header("x-env-tag", "beta")).await;
    assert_eq!(tally(&got), BTreeMap::from([("api-canary", 2)]));
    for g in &got {
        want.routed("api", g, "beta", "2xx", "tag");
    }
    // api, unknown tag under `reject`: 503 from the gateway itself.
    send_all(gw, 3, StatusCode::SERVICE_UNAVAILABLE, |_| {
        api().header("x-env-tag", "nope")
    })
    .await;
    for _ in 0..3 {
        want.rejected("api");
    }

    // legacy: the only target refuses, 502. Pingora closes the connection after a proxy
    // failure, so a fresh one each time.
    for i in 0..3 {
        let resp = Req::get("/").host(LEGACY).send(gw.addr()).await;
        assert_eq!(resp.status, StatusCode::BAD_GATEWAY, "legacy request {i}");
        want.routed("legacy", "legacy", "none", "5xx", "split");
        want.upstream_error("legacy", &fx.dead.to_string(), "connect_refused");
    }

    // No route: 404.
    send_all(gw, 2, StatusCode::NOT_FOUND, |_| {
        Req::get("/").host("nowhere.example.com")
    })
    .await;
    want.no_route("4xx");
    want.no_route("4xx");

    // Requests are counted in the logging phase, right after the answer went out.
    let total = want.total as f64;
    let m = gw
        .wait_for_metrics(METRICS_TIMEOUT, "count of every request", |m| {
            m.sum(REQUESTS, &[]) >= total && m.sum(UPSTREAM_ERRORS, &[]) >= 3.0
        })
        .await;

    m.assert_family(REQUESTS, &want.requests);
    m.assert_family(DECISIONS, &want.decisions);
    m.assert_family(UPSTREAM_ERRORS, &want.errors);
    for route in &SHAPES {
        for (group, _) in route.groups {
            let n = want
                .histogram
                .get(&(route.name.to_owned(), (*group).to_owned()))
                .copied()
                .unwrap_or(0.0);
            m.assert_histogram(route.name, group, n);
        }
    }
    // Nothing else moved.
    assert_eq!(m.value(VERSION, &[]), 1.0);
    assert_eq!(m.sum(RELOADS, &[]), 1.0);
}

/// 64 well-mixed bits from a counter (splitmix64): distinct inputs give distinct outputs.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// Two client threads: one would be the bottleneck, not the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_distinct_tags_add_no_series() {
    const N: usize = 10_000;
    const CONNS: usize = 16;
    let stable = Upstream::start("shop-stable");
    let canary = Upstream::start("shop-canary");
    let gw = Dyegate::start(&format!(
        "{}routes:
  - name: shop
    dye: {{ tags: {{ canary: shop-canary }}, on_unknown_tag: base }}
    split: [{{ upstream: shop-stable, weight: 1 }}]
",
        upstream_groups(&[("shop-stable", &stable), ("shop-canary", &canary)])
    ));
    let before = gw.metrics().await;

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64;
    let tags: Vec<String> = (0..N as u64)
        .map(|i| format!("t{:016x}", splitmix64(seed ^ i)))
        .collect();
    assert_eq!(
        tags.iter().collect::<HashSet<_>>().len(),
        N,
        "tags are distinct"
    );

    let addr = gw.addr();
    let mut tasks = Vec::new();
    for chunk in tags.chunks(N / CONNS) {
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::http1(addr).await;
            for tag in chunk {
                let resp = conn.send(Req::get("/").header("x-env-tag", &tag)).await;
                assert_eq!(resp.status, StatusCode::OK, "tag {tag}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a sending task panicked");
    }

    let other = requests_total("shop", "shop-stable", "other", "2xx");
    let m = gw
        .wait_for_metrics(METRICS_TIMEOUT, "10,000 requests counted", |m| {
            m.sum(REQUESTS, &[]) >= N as f64
        })
        .await;
    // Every one counted under `other`, as a fallback decision, and nowhere else.
    let mut want = BTreeMap::new();
    want.insert(other.clone(), N as f64);
    m.assert_family(REQUESTS, &want);
    assert_eq!(
        m.value(
            DECISIONS,
            &[
                ("route", "shop"),
                ("upstream_group", "shop-stable"),
                ("reason", "fallback")
            ]
        ),
        N as f64
    );
    // The same series as before the traffic, in every dyegate family.
    let dyegate = |s: &Scrape| -> BTreeSet<Series> {
        s.series()
            .filter(|(s, _)| s.name.starts_with("dyegate_"))
            .map(|(s, _)| s.clone())
            .collect()
    };
    assert_eq!(dyegate(&before).len(), dyegate(&m).len());
    assert_eq!(dyegate(&before), dyegate(&m));
    // No label value anywhere is one of the tags sent.
    let sent: HashSet<&str> = tags.iter().map(String::as_str).collect();
    let leaked: Vec<String> = m
        .series()
        .filter(|(s, _)| s.labels.values().any(|v| sent.contains(v.as_str())))
        .map(|(s, _)| s.to_string())
        .collect();
    assert!(leaked.is_empty(), "tags leaked into labels: {leaked:?}");
}

#[tokio::test]
async fn metrics_need_the_admin_token_when_one_is_set() {
    let stable = Upstream::start("shop-stable");
    let routes = format!(
        "{}routes:\n  - name: shop\n    split: [{{ upstream: shop-stable, weight: 1 }}]\n",
        upstream_groups(&[("shop-stable", &stable)])
    );
    let config = GatewayConfig::new(&routes);
    let admin = config.admin_addr();
    let text = gateway_yaml(config.proxy_addr(), admin).replacen(
        &format!("admin: {{ listen: \"{admin}\" }}"),
        &format!("admin: {{ listen: \"{admin}\", token: \"s3cret\" }}"),
        1,
    );
    assert!(
        text.contains("s3cret"),
        "the suite's gateway.yaml changed shape:\n{text}"
    );
    config.write(GATEWAY_FILE, &text);
    let gw = config.start();

    let resp = Req::get("/metrics").send(gw.admin_addr()).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{}", resp.text());
    let resp = Req::get("/metrics")
        .header("authorization", "Bearer wrong")
        .send(gw.admin_addr())
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{}", resp.text());
    let m = gw
        .metrics_with(Req::get("/metrics").header("authorization", "Bearer s3cret"))
        .await;
    assert_eq!(m.value(VERSION, &[]), 1.0);
}
