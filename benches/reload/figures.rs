//! The figures of the live-reload issue's "Under load" section, measured on the real gateway.
//! A bench target run by `cargo test` (never by `./tests/run.sh`): they take minutes and only
//! mean something in release mode, one at a time. How to run them and the last results: benches/reload/README.md.
//!
//! ```text
//! cargo test --release --bench reload_figures -- --nocapture --test-threads=1
//! ```

use dyegate_suite::procfs::rss_kib;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dyegate_suite::gateway::many_routes_yaml;
use dyegate_suite::load::{Load, Shape};
use dyegate_suite::{upstream_groups, Conn, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;
use serde_json::Value;

/// Median, min and max of `values` (sorted in place).
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    assert!(!values.is_empty());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The machine, for the record next to every figure.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cpus} CPUs, load average {}", load.join(" "))
}

/// `POST /reload`; the report and how long the call took.
async fn reload(gw: &Dyegate) -> (StatusCode, Value, Duration) {
    let start = Instant::now();
    let (code, report) = gw.admin_post("/reload", None).await;
    (code, report, start.elapsed())
}

/// routes.yaml for the reload loop: `extra` routes on their own hosts (never matched by the
/// load, there to give the table some size) and then `shop`, which the load hits, split between
/// `a` and `b` by `weights`. `split_to` names the groups of `shop` (a bad name makes it invalid).
fn loop_routes(
    a: &Upstream,
    b: &Upstream,
    extra: usize,
    weights: (u32, u32),
    split_to: (&str, &str),
) -> String {
    let mut y = upstream_groups(&[("a", a), ("b", b)]);
    y.push_str("routes:\n");
    for i in 0..extra {
        let _ = writeln!(
            y,
            "  - name: r{i}\n    match: {{ host: svc{i}.example.com, path_prefix: /v{} }}\n    split: [{{ upstream: a, weight: 9 }}, {{ upstream: b, weight: 1 }}]",
            i % 7
        );
    }
    let _ = writeln!(
        y,
        "  - name: shop\n    split: [{{ upstream: {}, weight: {} }}, {{ upstream: {}, weight: {} }}]",
        split_to.0, weights.0, split_to.1, weights.1
    );
    y
}

#[tokio::test]
async fn figures_1000_reloads_under_traffic() {
    // `RELOAD_FIGURES_RELOADS=5000` for a longer look at the RSS trend.
    let reloads: usize = std::env::var("RELOAD_FIGURES_RELOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    const INVALID_EVERY: usize = 10;
    const WARM_UP: usize = 40;

    let (a, b) = (
        Upstream::start_unrecorded("a"),
        Upstream::start_unrecorded("b"),
    );
    let file_a = loop_routes(&a, &b, 200, (95, 5), ("a", "b"));
    let file_b = loop_routes(&a, &b, 200, (50, 50), ("a", "b"));
    let invalid = loop_routes(&a, &b, 200, (95, 5), ("a", "c"));
    // Reloads are driven through POST /reload (the same pipeline as a file event, but
    // acknowledged), so the watcher is off: it would add a no-op attempt after each burst.
    let gw = GatewayConfig::new(&file_a)
        .with_gateway_extra("reload: { watch: false }\n")
        .start();
    let pid = gw.pid();
    let rss_start = rss_kib(pid);

    let load = Load::start(
        gw.addr(),
        Shape {
            keep_alive: 2,
            fresh: 2,
            path: "/load".to_owned(),
        },
    );
    // Warm up: traffic running and the kept history (20 versions) full, so that what follows
    // measures the steady state.
    for i in 0..WARM_UP {
        gw.config()
            .write("routes.yaml", if i % 2 == 0 { &file_b } else { &file_a });
        let (code, report, _) = reload(&gw).await;
        assert_eq!(code, StatusCode::OK, "{report:#}");
    }
    let rss_before = rss_kib(pid);
    let before = load.report();

    let started = Instant::now();
    let (mut applied, mut failed, mut valid) = (0usize, 0usize, 0usize);
    let mut swap_us = Vec::new();
    let mut call_ms = Vec::new();
    let mut rss_trend = Vec::new();
    while applied < reloads {
        let bad = (applied + failed) % (INVALID_EVERY + 1) == INVALID_EVERY;
        let text = if bad {
            &invalid
        } else {
            valid += 1;
            if valid % 2 == 0 {
                &file_a
            } else {
                &file_b
            }
        };
        gw.config().write("routes.yaml", text);
        let (code, report, took) = reload(&gw).await;
        match (bad, code) {
            (false, StatusCode::OK) => {
                assert_eq!(report["result"], "applied", "{report:#}");
                applied += 1;
                if applied % 100 == 0 {
                    rss_trend.push(rss_kib(pid) / 1024);
                }
                swap_us.push(report["swap_micros"].as_f64().expect("swap_micros"));
                call_ms.push(ms(took));
            }
            (true, StatusCode::UNPROCESSABLE_ENTITY) => failed += 1,
            _ => panic!("reload {}: {code} {report:#}", applied + failed),
        }
    }
    let elapsed = started.elapsed();
    let rss_after = rss_kib(pid);
    let during = load.report();
    let report = load.stop().await;
    let rss_idle = rss_kib(pid);

    let status = gw.status().await;
    assert_eq!(
        status["reloads"]["applied"].as_u64(),
        Some((reloads + WARM_UP) as u64),
        "{status:#}"
    );
    assert_eq!(status["reloads"]["failed"].as_u64(), Some(failed as u64));
    let audit = gw.config().audit_records();
    assert_eq!(audit.len(), 1 + WARM_UP + reloads + failed);

    let (swap_med, swap_min, swap_max) = spread(&mut swap_us);
    let (call_med, call_min, call_max) = spread(&mut call_ms);
    let in_loop = during.sent - before.sent;
    println!(
        "\n== {reloads} reloads under traffic ({}) ==\n\
         reloads: {applied} applied + {failed} rejected in {:.1?} ({:.1} per second)\n\
         parse-to-swap (swap_micros): median {swap_med:.0} µs, min {swap_min:.0}, max {swap_max:.0}\n\
         POST /reload round trip: median {call_med:.2} ms, min {call_min:.2}, max {call_max:.2}\n\
         traffic during the loop: {in_loop} requests ({:.0}/s)\n\
         traffic in total: {report}\n\
         RSS: {rss_start} KiB at start, {rss_before} KiB after warm-up, {rss_after} KiB after the loop \
         ({:+} KiB), {rss_idle} KiB with traffic stopped\n\
         RSS every 100 reloads (MiB): {rss_trend:?}",
        machine(),
        elapsed,
        (applied + failed) as f64 / elapsed.as_secs_f64(),
        in_loop as f64 / elapsed.as_secs_f64(),
        rss_after as i64 - rss_before as i64,
    );
    assert!(report.is_clean(), "{report}");
    assert!(
        rss_after < rss_before + 8 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}

#[tokio::test]
async fn figures_reload_latency_by_route_count() {
    const RELOADS: usize = 21;
    const REWRITES: usize = 6;
    let mut lines = Vec::new();
    let mut medians = Vec::new();
    for n in [10usize, 1_000, 10_000] {
        let texts = [many_routes_yaml(n, 5), many_routes_yaml(n, 20)];
        let gw = GatewayConfig::new(&texts[0])
            .with_gateway_extra("reload: { watch: false }\n")
            .start();
        let (mut swap_us, mut call_ms) = (Vec::new(), Vec::new());
        let mut stages: Vec<(&str, Vec<f64>)> = [
            "parse_us",
            "decode_us",
            "validate_us",
            "compile_us",
            "parsed",
            "reused",
        ]
        .into_iter()
        .map(|k| (k, Vec::new()))
        .collect();
        for i in 1..=RELOADS {
            gw.config().write("routes.yaml", &texts[i % 2]);
            let (code, report, took) = reload(&gw).await;
            assert_eq!(code, StatusCode::OK, "{report:#}");
            assert_eq!(report["result"], "applied", "{report:#}");
            swap_us.push(report["swap_micros"].as_f64().expect("swap_micros"));
            call_ms.push(ms(took));
            for (key, values) in &mut stages {
                if let Some(us) = report["timings"][*key].as_f64() {
                    values.push(us);
                }
            }
        }
        // The audit log has the same figure (what an operator would read).
        let audited: Vec<f64> = gw
            .config()
            .audit_records()
            .iter()
            .filter_map(|r| r["swap_micros"].as_f64())
            .collect();
        assert_eq!(audited.len(), RELOADS);
        let rollback_us = {
            let (code, report) = gw.admin_post("/rollback", None).await;
            assert_eq!(code, StatusCode::OK, "{report:#}");
            report["swap_micros"].as_f64().expect("swap_micros")
        };
        // The same table with every route changed (all weights 95 -> 94 and back): nothing can be
        // reused, the whole file goes through the YAML parser.
        let mut rewrite_us = Vec::new();
        for i in 1..=REWRITES {
            let text = if i % 2 == 1 {
                texts[0].replace("weight: 95", "weight: 94")
            } else {
                texts[0].clone()
            };
            gw.config().write("routes.yaml", &text);
            let (code, report, _) = reload(&gw).await;
            assert_eq!(code, StatusCode::OK, "{report:#}");
            assert_eq!(report["result"], "applied", "{report:#}");
            rewrite_us.push(report["swap_micros"].as_f64().expect("swap_micros"));
        }
        let (w_med, w_min, w_max) = spread(&mut rewrite_us);
        let (s_med, s_min, s_max) = spread(&mut swap_us);
        let (c_med, c_min, c_max) = spread(&mut call_ms);
        let breakdown: Vec<String> = stages
            .iter_mut()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| match k.strip_suffix("_us") {
                Some(stage) => format!("{stage} {:.2} ms", spread(v).0 / 1000.0),
                None => format!("entries {k} {}", spread(v).0),
            })
            .collect();
        medians.push((n, s_med / 1000.0));
        lines.push(format!(
            "{n:>6} routes ({:>7} bytes): one-line edit: parse-to-swap median {:>8.2} ms (min {:.2}, max {:.2}); \
             POST /reload round trip median {:>8.2} ms (min {:.2}, max {:.2}); rollback swap {:.2} ms\n\
             {:>22}medians by stage: {}\n\
             {:>22}every route changed ({REWRITES} reloads): parse-to-swap median {:.2} ms (min {:.2}, max {:.2})",
            texts[0].len(),
            s_med / 1000.0,
            s_min / 1000.0,
            s_max / 1000.0,
            c_med,
            c_min,
            c_max,
            rollback_us / 1000.0,
            "",
            breakdown.join(", "),
            "",
            w_med / 1000.0,
            w_min / 1000.0,
            w_max / 1000.0,
        ));
    }
    println!(
        "\n== reload latency, {RELOADS} reloads each ({}) ==\n{}",
        machine(),
        lines.join("\n")
    );
    for (n, median_ms) in medians {
        if n == 10_000 {
            assert!(
                median_ms < 100.0,
                "parse-to-swap of a one-line edit at 10,000 routes: median {median_ms:.1} ms, target under 100 ms"
            );
        }
    }
}

/// Saves `text` with `save` and polls on `conn` until `group` answers; the time from just
/// before the save to that answer.
async fn save_to_observed(
    gw: &Dyegate,
    conn: &mut Conn,
    group: &str,
    save: impl FnOnce(),
) -> Duration {
    let saved = Instant::now();
    save();
    loop {
        let resp = conn.send(Req::get("/")).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        if resp.upstream() == Some(group) {
            return saved.elapsed();
        }
        assert!(
            saved.elapsed() < Duration::from_secs(10),
            "not routed to {group} 10 s after the save\n{}",
            gw.logs()
        );
    }
}

#[tokio::test]
async fn figures_save_to_new_routing_observed() {
    const SAVES: usize = 20;
    let (blue, green) = (
        Upstream::start_unrecorded("blue"),
        Upstream::start_unrecorded("green"),
    );
    let routes_to = |group: &str| {
        format!(
            "{}routes:\n  - name: all\n    split: [{{ upstream: {group}, weight: 1 }}]\n",
            upstream_groups(&[("blue", &blue), ("green", &green)])
        )
    };
    let gw = GatewayConfig::new(&routes_to("blue")).start();
    let mut conn = Conn::http1(gw.addr()).await;
    let mut lines = Vec::new();
    for how in ["in place", "rename over"] {
        let mut took = Vec::new();
        for i in 0..SAVES {
            let group = if i % 2 == 0 { "green" } else { "blue" };
            let text = routes_to(group);
            let cfg = gw.config();
            let t = save_to_observed(&gw, &mut conn, group, || {
                if how == "in place" {
                    cfg.write("routes.yaml", &text);
                } else {
                    cfg.write_and_rename("routes.yaml", &text);
                }
            })
            .await;
            took.push(ms(t));
        }
        let (med, min, max) = spread(&mut took);
        lines.push(format!(
            "{how:>11}: median {med:.1} ms, min {min:.1}, max {max:.1} over {SAVES} saves"
        ));
        assert!(med < 500.0, "{how}: median {med:.1} ms");
    }
    let status = gw.status().await;
    assert_eq!(
        status["reloads"]["applied"].as_u64(),
        Some(2 * SAVES as u64),
        "{status:#}"
    );
    println!(
        "\n== file save to new routing observed, debounce 200 ms ({}) ==\n{}",
        machine(),
        lines.join("\n")
    );
}
