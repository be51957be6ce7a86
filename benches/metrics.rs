//! What the always-on metrics cost a request, measured where they cannot be switched off in the
//! gateway: `TableMetrics::request` (what the logging hook records per routed request: the
//! requests counter of route/group/tag/status class, the decision counter, the latency
//! histogram) against doing nothing; the same with two threads recording into the same series at
//! once (the two proxy workers of the load comparison, bouncing the same cache lines); the clock
//! reads the duration needs; and, off the request path, one scrape (`Metrics::render`) of 1 and
//! 1,000 routes.
//!
//! Divide the per-request numbers by dyegate's CPU per request from `benches/load/run.sh`
//! (tens of µs) for the share of a request's CPU that metrics take; benches/load/README.md has
//! the figures.
//!
//! Run: `cargo bench --bench metrics`

use std::fmt::Write;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dyegate::config::routes_from_text;
use dyegate::routing::{GroupId, Reason, RouteTable};
use dyegate::telemetry::{Metrics, StatusClass, TableMetrics};

/// The load comparison's routing (benches/load/run.sh): one route, tag `canary` → canary, all
/// untagged traffic to stable; plus `extra` more routes of the same shape.
fn table(extra: usize) -> std::sync::Arc<RouteTable> {
    let mut y = String::from(
        "upstreams:\n  stable: { targets: [\"127.0.0.1:1\"] }\n  canary: { targets: [\"127.0.0.1:2\"] }\n",
    );
    for i in 0..extra {
        let _ = writeln!(y, "  s{i}: {{ targets: [\"127.0.0.1:{}\"] }}", 1000 + i);
        let _ = writeln!(y, "  c{i}: {{ targets: [\"127.0.0.2:{}\"] }}", 1000 + i);
    }
    y.push_str(
        "routes:\n  - name: app\n    dye: { tags: { canary: canary } }\n    split: [{ upstream: stable, weight: 100 }]\n",
    );
    for i in 0..extra {
        let _ = writeln!(
            y,
            "  - name: r{i}\n    match: {{ host: svc{i}.example.com }}\n    dye: {{ tags: {{ canary: c{i} }} }}\n    split: [{{ upstream: s{i}, weight: 95 }}, {{ upstream: c{i}, weight: 5 }}]"
        );
    }
    match routes_from_text("bench.yaml", y.into_bytes(), None) {
        Ok(l) => l.table,
        Err(e) => panic!("bench table invalid: {e}"),
    }
}

fn group_id(table: &RouteTable, name: &str) -> GroupId {
    table
        .groups()
        .iter()
        .position(|g| &*g.name == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

/// One routed, untagged 200 as the logging hook records it.
fn record(tm: &TableMetrics, stable: GroupId) {
    tm.request(
        black_box(0),
        black_box(stable),
        black_box(None),
        black_box(Reason::Split),
        StatusClass::of(black_box(200)),
        black_box(0.000_4),
    );
}

/// `iters` calls of `f` on each of two threads started together; returns the slower thread's
/// wall time, i.e. the CPU time per call of a thread that records while another one does too.
fn two_threads(iters: u64, f: impl Fn() + Sync) -> Duration {
    let start = Barrier::new(2);
    let run = || {
        start.wait();
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed()
    };
    std::thread::scope(|s| {
        let other = s.spawn(run);
        let mine = run();
        let theirs = other.join().unwrap_or(mine);
        mine.max(theirs)
    })
}

fn per_request(c: &mut Criterion) {
    let table = table(0);
    let metrics = Metrics::new();
    let tm = metrics.for_table(&table, None);
    let stable = group_id(&table, "stable");
    let canary = group_id(&table, "canary");

    let mut g = c.benchmark_group("per_request");
    g.bench_function("nothing", |b| {
        b.iter(|| black_box((black_box(0usize), black_box(stable), black_box(200u16))))
    });
    g.bench_function("request untagged", |b| b.iter(|| record(&tm, stable)));
    g.bench_function("request tagged canary", |b| {
        b.iter(|| {
            tm.request(
                black_box(0),
                black_box(canary),
                black_box(Some("canary")),
                black_box(Reason::Tag),
                StatusClass::of(black_box(200)),
                black_box(0.000_4),
            )
        })
    });
    // The duration: Instant::now() when the request starts, elapsed() in the logging hook.
    g.bench_function("clock now + elapsed", |b| {
        b.iter(|| black_box(Instant::now()).elapsed().as_secs_f64())
    });
    g.bench_function("request untagged, 2 threads same series", |b| {
        b.iter_custom(|iters| two_threads(iters, || record(&tm, stable)))
    });
    g.bench_function("nothing, 2 threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                black_box(stable);
            })
        })
    });
    g.finish();
}

fn scrape(c: &mut Criterion) {
    let mut g = c.benchmark_group("scrape");
    g.sample_size(20);
    for extra in [0usize, 999] {
        let table = table(extra);
        let metrics = Metrics::new();
        let _tm = metrics.for_table(&table, None);
        g.bench_with_input(BenchmarkId::new("render", extra + 1), &metrics, |b, m| {
            b.iter(|| m.render().len())
        });
    }
    g.finish();
}

criterion_group!(benches, per_request, scrape);
criterion_main!(benches);
