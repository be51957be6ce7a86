//! The CPU side of a reload on tables of 10, 1,000 and 10,000 routes: `routes_from_text` (parse,
//! validate, compile: everything before the swap), `inherit_positions` (carrying split cycle
//! positions into the new table, also before the swap) and the semantic diff logged after it;
//! `yaml_parse_only` (libyaml building an untyped value of the same text) is the floor under
//! `routes_from_text`.
//! Target: parse to swap under 100 ms at 10,000 routes. The running gateway's own figure
//! (`swap_micros` in the audit log, on top of reading the file) is measured by
//! `benches/reload/figures.rs`; see benches/reload/README.md.
//!
//! Run: `cargo bench --bench reload`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dyegate::config::table::diff::diff;
use dyegate::config::{routes_from_text, LoadedRoutes};
use dyegate::routing::Carried;
use dyegate_suite::gateway::many_routes_yaml;
use std::time::Duration;

fn load(text: &str) -> LoadedRoutes {
    match routes_from_text("bench.yaml", text.as_bytes().to_vec(), None) {
        Ok(l) => l,
        Err(e) => panic!("bench routes invalid: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("reload");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    for n in [10usize, 1_000, 10_000] {
        let old_text = many_routes_yaml(n, 5);
        let new_text = many_routes_yaml(n, 20);
        // The floor: libyaml (through serde_yaml) building an untyped value of the same text.
        g.bench_with_input(BenchmarkId::new("yaml_parse_only", n), &n, |b, _| {
            b.iter(|| {
                serde_yaml::from_str::<serde_yaml::Value>(black_box(&new_text))
                    .map(|v| v.is_mapping())
                    .unwrap_or(false)
            })
        });
        g.bench_with_input(BenchmarkId::new("routes_from_text", n), &n, |b, _| {
            b.iter(|| {
                routes_from_text("bench.yaml", black_box(new_text.as_bytes().to_vec()), None)
                    .map(|l| l.routes)
                    .unwrap_or(0)
            })
        });
        let old = load(&old_text);
        if let Ok(l) = routes_from_text(
            "bench.yaml",
            new_text.as_bytes().to_vec(),
            old.reuse.as_ref(),
        ) {
            eprintln!("{n} routes, one edit: {:?}", l.timings);
        }
        // What a reload of a one-line edit does: the previous version lends its unchanged
        // entries, only the edited route is parsed.
        g.bench_with_input(BenchmarkId::new("routes_from_text_edit", n), &n, |b, _| {
            b.iter(|| {
                routes_from_text(
                    "bench.yaml",
                    black_box(new_text.as_bytes().to_vec()),
                    old.reuse.as_ref(),
                )
                .map(|l| l.routes)
                .unwrap_or(0)
            })
        });
        let new = load(&new_text);
        g.bench_with_input(BenchmarkId::new("inherit_positions", n), &n, |b, _| {
            b.iter(|| {
                new.table
                    .inherit_positions(black_box(&old.table), &Carried::default())
            })
        });
        // The diff of a reload: the new version shares its unchanged entries with the old one.
        let after = match routes_from_text(
            "bench.yaml",
            new_text.as_bytes().to_vec(),
            old.reuse.as_ref(),
        ) {
            Ok(l) => l,
            Err(e) => panic!("bench routes invalid: {e}"),
        };
        g.bench_with_input(BenchmarkId::new("diff_after_edit", n), &n, |b, _| {
            b.iter(|| {
                diff(black_box(&old.model), black_box(&after.model))
                    .lines
                    .len()
            })
        });
        g.bench_with_input(BenchmarkId::new("diff", n), &n, |b, _| {
            b.iter(|| {
                diff(black_box(&old.model), black_box(&new.model))
                    .lines
                    .len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
