//! What the rollout's windowed statistics cost a request: `Window::record` (the clock read, a
//! slot check and three relaxed atomic adds) alone and with two threads recording into the same
//! window at once (the two proxy workers, bouncing the same cache lines); `TableMetrics::request`
//! with and without the pair's window (what the logging hook does per routed request); and, off
//! the request path, one judgement's snapshot of a 30 s window.
//!
//! Divide the per-request numbers by dyegate's CPU per request from `benches/load/run.sh`
//! (benches/load/README.md) for the share of a request's CPU.
//!
//! Run: `cargo bench --bench rollout_window`

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dyegate::config::routes_from_text;
use dyegate::routing::Reason;
use dyegate::telemetry::window::now_second;
use dyegate::telemetry::window::Window;
use dyegate::telemetry::{Metrics, StatusClass};

const ROUTES: &str = "upstreams:\n  stable: { targets: [\"127.0.0.1:1\"] }\n  canary: { targets: [\"127.0.0.1:2\"] }\nroutes:\n  - name: shop\n    split: [{ upstream: stable, weight: 95 }, { upstream: canary, weight: 5 }]\n";

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
        let a = s.spawn(run);
        let b = run();
        a.join().unwrap_or_default().max(b)
    })
}

fn window(c: &mut Criterion) {
    let w = Window::new();
    c.bench_function("window_record", |b| {
        b.iter(|| w.record(black_box(200), black_box(0.000_4)))
    });
    c.bench_function("window_record_2_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || w.record(black_box(503), black_box(0.02))))
    });
    let now = now_second();
    c.bench_function("window_snapshot_30s", |b| {
        b.iter(|| black_box(w.snapshot(now - 30, now)))
    });

    let table = match routes_from_text("bench.yaml", ROUTES.as_bytes().to_vec(), None) {
        Ok(l) => l.table,
        Err(e) => panic!("bench table invalid: {e}"),
    };
    let metrics = Metrics::new();
    let tm = metrics.for_table(&table, None);
    let request = || {
        tm.request(
            0,
            black_box(1),
            None,
            Reason::Split,
            StatusClass::of(black_box(200)),
            0.000_4,
        )
    };
    c.bench_function("metrics_request_without_window", |b| b.iter(request));
    let _w = metrics.rollout_window("shop", "canary");
    let tm = metrics.for_table(&table, None);
    c.bench_function("metrics_request_with_window", |b| {
        b.iter(|| {
            tm.request(
                0,
                black_box(1),
                None,
                Reason::Split,
                StatusClass::of(black_box(200)),
                0.000_4,
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = window
}
criterion_main!(benches);
