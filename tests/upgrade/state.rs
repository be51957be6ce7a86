//! The state an upgrade hands over, end to end: counters that never go back in a scrape and add
//! up to the requests sent; an ejected target still ejected (and sent nothing) after the
//! upgrade; a DNS name the new process cannot resolve served with the old process's addresses;
//! a state that cannot be read: the new process starts fresh, and serves; rollout events not
//! delivered yet (their receiver down) delivered by the new process, their sequence going on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dyegate_suite::dns::Dnsmasq;
use dyegate_suite::metrics::{Scrape, Series};
use dyegate_suite::upgrade::under_load::*;
use dyegate_suite::upgrade::{get_once, Upgradable};
use dyegate_suite::upstream::{Fault, FaultyUpstream};
use dyegate_suite::{wait_until_async, GatewayConfig, Req, Upstream};
use http::StatusCode;

/// What the scraper saw.
#[derive(Default)]
struct Scrapes {
    answered: usize,
    /// Scrapes the old process refused (503) once it handed over.
    refused: usize,
    /// Every series of the two families, as last seen.
    last: std::collections::BTreeMap<Series, f64>,
    /// (series, from, to) for every value that went back.
    went_back: Vec<(Series, f64, f64)>,
}

const FAMILIES: [&str; 2] = [
    "dyegate_requests_total",
    "dyegate_request_duration_seconds_count",
];

/// `GET /metrics` every 100 ms until stopped.
fn scrape_every_100ms(
    admin: std::net::SocketAddr,
) -> (
    Arc<AtomicBool>,
    Arc<Mutex<Scrapes>>,
    tokio::task::JoinHandle<()>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Scrapes::default()));
    let task = {
        let (stop, seen) = (stop.clone(), seen.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let resp = Req::get("/metrics").send(admin).await;
                {
                    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                    if resp.status == StatusCode::OK {
                        s.answered += 1;
                        let scrape = Scrape::parse(&resp.text());
                        for family in FAMILIES {
                            for (series, v) in scrape.family(family) {
                                let before = s.last.insert(series.clone(), v);
                                if let Some(before) = before.filter(|b| *b > v) {
                                    s.went_back.push((series, before, v));
                                }
                            }
                        }
                    } else if resp.status == StatusCode::SERVICE_UNAVAILABLE {
                        s.refused += 1;
                    }
                }
                // time is tested: the scrape interval across the upgrade.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    (stop, seen, task)
}

async fn requests_total(gw: &Upgradable) -> f64 {
    let resp = Req::get("/metrics").send(gw.admin_addr()).await;
    Scrape::parse(&resp.text()).sum("dyegate_requests_total", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_never_go_back_across_an_upgrade_and_add_up_to_the_requests_sent() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let load = start_load(&gw).await;
    let (stop, seen, scraper) = scrape_every_100ms(gw.admin_addr());
    assert!(
        wait_until_async(SERVES_WITHIN, || async {
            seen.lock().map_or(0, |s| s.answered) > 5
        })
        .await
    );

    let run = gw.upgrade_ok().await;
    assert!(load.wait_for_more_ok(50, SERVES_WITHIN).await);
    let report = load.stop().await;
    assert_clean(&report, &gw);
    // The old process's last counts (its drain) arrive when it exits: then the sum is exact.
    let sent = report.sent as f64;
    let exact = wait_until_async(SERVES_WITHIN, || async {
        requests_total(&gw).await == sent
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    scraper.await.expect("scraper");
    let total = requests_total(&gw).await;
    let count = Scrape::parse(&Req::get("/metrics").send(gw.admin_addr()).await.text())
        .sum("dyegate_request_duration_seconds_count", &[]);
    let s = seen.lock().unwrap_or_else(|e| e.into_inner());
    println!(
        "counters across an upgrade ({run}): {} scrapes answered, {} refused by the old process after the handover, \
         {} values went back; dyegate_requests_total {total} for {} requests sent",
        s.answered, s.refused, s.went_back.len(), report.sent
    );
    assert!(s.went_back.is_empty(), "{:?}", s.went_back);
    assert!(
        exact,
        "dyegate_requests_total {total}, requests sent {sent}\n{}",
        gw.logs()
    );
    assert_eq!(count, sent, "the latency histogram's count continues too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ejected_target_stays_ejected_and_unused_after_the_upgrade() {
    let stable = FaultyUpstream::start("stable", Fault::None);
    let canary = FaultyUpstream::start("canary", Fault::HealthyButFailing);
    let routes = format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary:\n    targets: [\"{}\"]\n    health: {{ http: {{}}, interval_ms: 100 }}\n    outlier: {{ consecutive_failures: 3, eject_ms: 60000 }}\nroutes:\n  - name: shop\n    dye: {{ tags: {{ canary: canary }} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        stable.target(),
        canary.target()
    );
    let config = GatewayConfig::new(&routes);
    append_gateway(&config, &format!("{WATCH_LINE}\n"));
    let gw = Upgradable::start(config).await;
    let tagged = || Req::get("/").header("x-env-tag", "canary").send(gw.addr());
    for _ in 0..3 {
        assert_eq!(tagged().await.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let canary_state = |u: &serde_json::Value| u["groups"][1]["targets"][0].clone();
    let before = match get_once(gw.admin_addr(), "/upstreams").await {
        Ok((200, u)) => canary_state(&u),
        other => panic!("{other:?}"),
    };
    assert_eq!(before["state"], "ejected", "{before:#}");

    let run = gw.upgrade_ok().await;
    let after = match get_once(gw.admin_addr(), "/upstreams").await {
        Ok((200, u)) => canary_state(&u),
        other => panic!("{other:?}"),
    };
    println!("ejected before the upgrade: {before}\nafter ({run}): {after}");
    assert_eq!(after["state"], "ejected", "{after:#}\n{}", gw.logs());
    let until = |v: &serde_json::Value| {
        dyegate_suite::time::rfc3339_ms(v["ejected_until"].as_str().unwrap_or_default())
    };
    let moved = (until(&after) - until(&before)).abs();
    assert!(
        moved <= 1000,
        "the ejection's end moved by {moved} ms: {before} -> {after}"
    );
    for _ in 0..20 {
        assert_eq!(tagged().await.upstream(), Some("stable"));
    }
    assert_eq!(
        canary.request_count(),
        3,
        "the ejected target got requests after the upgrade"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_name_the_new_process_cannot_resolve_is_served_with_the_old_processs_addresses() {
    let up = Upstream::start("orders");
    let mut dns = Dnsmasq::start(&[("orders.test", "127.0.0.1")]);
    let routes = format!(
        "upstreams:\n  orders: {{ targets: [\"orders.test:{}\"] }}\nroutes:\n  - name: all\n    split: [{{ upstream: orders, weight: 1 }}]\n",
        up.addr().port()
    );
    let config = GatewayConfig::new(&routes).gateway_extra(&format!(
        "dns: {{ interval_ms: 60000, nameservers: [\"{}\"] }}\n{WATCH_LINE}",
        dns.addr()
    ));
    let gw = Upgradable::start(config).await;
    let first = Req::get("/").send(gw.addr()).await;
    assert_eq!(first.upstream(), Some("orders"), "{}", first.text());

    dns.stop();
    gw.upgrade_ok().await;
    let after = Req::get("/after").send(gw.addr()).await;
    assert_eq!(
        after.status,
        StatusCode::OK,
        "{}\n{}",
        after.text(),
        gw.logs()
    );
    assert_eq!(after.upstream(), Some("orders"));
    assert!(
        gw.logs().contains("handover: DNS names without an answer yet take the old process's addresses: orders.test"),
        "{}",
        gw.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_state_that_cannot_be_read_starts_the_new_process_fresh() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    // The old process cannot write the state where the new one reads it: a directory there.
    std::fs::create_dir_all(gw.config().path("state/handover.json")).expect("mkdir");
    let run = gw.upgrade_ok().await;
    let status = gw.status().await;
    assert_eq!(
        Some(status["pid"].as_u64().unwrap_or(0) as u32),
        run.new_pid
    );
    assert_eq!(status["process"]["generation"], 0, "{status:#}");
    let logs = gw.logs();
    assert!(
        logs.contains("handover: cannot write the state ("),
        "{logs}"
    );
    assert!(
        logs.contains("handover: state not used, starting fresh: "),
        "{logs}"
    );
    let resp = Req::get("/fresh").send(gw.addr()).await;
    assert_eq!(resp.upstream(), Some("stable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_breaching_canary_still_aborts_right_after_the_upgrade() {
    // 30 failures before the upgrade are short of `min_requests`; 10 more after it make 40 in
    // the window: a window carried over aborts at once, a fresh one would wait for 40 more.
    let fields = "steps: [50, 100], step_ms: 600000, gates: { window_ms: 120000, min_requests: 40, max_error_rate: 0.5 }";
    let (gw, rollout, (_stable, canary)) =
        dyegate_suite::rollout::upgradable_at_step_1(fields).await;
    canary.set_fault(Fault::Status500);
    let tagged = || Req::get("/").header("x-env-tag", "canary").send(gw.addr());
    for _ in 0..30 {
        assert_eq!(tagged().await.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let before = rollout.status().await;
    assert_ne!(before["state"], "failed", "{before:#}");
    gw.upgrade_ok().await;
    // The new process judges the 30 it was handed (not enough traffic yet, not failed).
    let canary_requests = |r: &serde_json::Value| {
        (r["last_evaluation"]["groups"]
            .as_array()
            .into_iter()
            .flatten())
        .find(|g| g["group"] == "canary")
        .map(|g| g["requests"].clone())
    };
    let judged = wait_until_async(Duration::from_secs(10), || async {
        canary_requests(&rollout.status().await) == Some(serde_json::json!(30))
    })
    .await;
    let after = rollout.status().await;
    assert!(judged, "{after:#}\n{}", gw.logs());
    assert_ne!(after["state"], "failed", "{after:#}");
    let started = std::time::Instant::now();
    for _ in 0..10 {
        tagged().await;
    }
    let failed = wait_until_async(Duration::from_secs(10), || async {
        rollout.status().await["state"] == "failed"
    })
    .await;
    let r = rollout.status().await;
    println!(
        "breach judged {:?} after the 10 requests that followed the upgrade: {}",
        started.elapsed(),
        r["last_evaluation"]
    );
    assert!(failed, "{r:#}\n{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollout_events_waiting_for_a_receiver_that_is_down_are_delivered_by_the_new_process() {
    // The receiver's address, then the receiver gone: every event waits.
    let addr = dyegate_suite::webhook::Webhook::start().addr();
    let fields = format!(
        "steps: [50, 100], step_ms: 600000, gates: {{ window_ms: 60000, min_requests: 20, max_error_rate: 0.5 }}, hooks: {{ events: {{ url: \"http://{addr}/events\" }} }}"
    );
    let (gw, rollout, _upstreams) = dyegate_suite::rollout::upgradable_at_step_1(&fields).await;
    let (code, body) = gw.gateway().admin_post("/rollouts/shop/pause", None).await;
    assert_eq!(code, StatusCode::OK, "{body:#}");
    let waiting = |r: &serde_json::Value| r["hooks"]["events_waiting"].as_u64().unwrap_or(0);
    let before = dyegate_suite::poll_until(
        Duration::from_secs(10),
        || rollout.status(),
        |r| r["state"] == "paused" && waiting(r) >= 3,
    )
    .await
    .unwrap_or_else(|r| panic!("started, step 1 and paused should wait: {r:#}"));
    let carried = waiting(&before);
    gw.upgrade_ok().await;
    // The new process holds them, and moves the rollout on: one more event.
    let after = rollout.status().await;
    assert_eq!(waiting(&after), carried, "{after:#}\n{}", gw.logs());
    let (code, body) = gw.gateway().admin_post("/rollouts/shop/resume", None).await;
    assert_eq!(code, StatusCode::OK, "{body:#}");
    let hook = dyegate_suite::webhook::Webhook::start_on(addr).expect("the receiver back");
    let total = carried as usize + 1;
    let received = dyegate_suite::poll_until(
        Duration::from_secs(20),
        || async { hook.received() },
        |r| r.len() >= total,
    )
    .await
    .unwrap_or_else(|r| panic!("{} of {total} events: {}", r.len(), gw.logs()));
    let events: Vec<serde_json::Value> = received.iter().map(|r| r.json()).collect();
    // Every event once, in order, the sequence going on across the upgrade (the new process
    // may have moved on since: more events after the resume are fine).
    let sequence: Vec<String> = (events.iter())
        .map(|e| e["sequence"].as_str().unwrap_or("?").to_string())
        .collect();
    let want: Vec<String> = (1..=events.len()).map(|i| i.to_string()).collect();
    assert_eq!(
        sequence, want,
        "none lost, none twice, in order: {events:#?}"
    );
    let kind = |e: &serde_json::Value| e["type"].as_str().unwrap_or("?").to_string();
    let carried = carried as usize;
    assert_eq!(kind(&events[carried - 1]), "dev.dyegate.rollout.paused");
    assert_eq!(kind(&events[carried]), "dev.dyegate.rollout.resumed");
    // `id` is ROUTE-PROCESS_START-SEQUENCE: the waiting ones are the old process's own, sent
    // by the new one.
    let process = |e: &serde_json::Value| {
        let id = e["id"].as_str().unwrap_or("");
        id.rsplit_once('-')
            .map(|(p, _)| p.to_string())
            .unwrap_or_default()
    };
    let old: Vec<String> = events[..carried].iter().map(process).collect();
    let new = process(&events[carried]);
    assert!(old.iter().all(|p| *p == old[0]), "{old:?}");
    assert_ne!(old[0], new, "{events:#?}");
}
