//! The CPU side of a reload on tables of 10, 1,000 and 10,000 routes: `routes_from_text` (parse,
//! validate, compile: everything before the swap), `inherit_positions` (carrying split cycle
//! positions into the new table, also before the swap) and the semantic diff logged after it;
//! `yaml_parse_only` (libyaml building an untyped value of the same text) is the floor under
//! `routes_from_text`.
//! Target: parse to swap under 100 ms at 10,000 routes. The running gateway's own figure
//! (`swap_micros` in the audit log, on top of reading the file) is measured by
//! `benches/reload/figures.rs`; see benches/reload/README.md.
//!
//! `reload_rollouts`: the same one-line edit and whole-file reload at 10,000 routes with 100
//! rollouts holding a step (their weights set over the decoded table) and without rollouts.
//!
//! Run: `cargo bench --bench reload`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dyegate::config::table::compile_rollout::plans;
use dyegate::config::table::diff::diff;
use dyegate::config::{routes_from_text, routes_from_text_over, LoadedRoutes};
use dyegate::routing::Carried;
use dyegate::routing::Overrides;
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

/// `many_routes_yaml(n, canary)` with a `rollout:` on every 100th route.
fn with_rollouts(n: usize, canary: u32) -> String {
    let mut out = String::new();
    let mut route = 0usize;
    for line in many_routes_yaml(n, canary).lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("    split:") {
            if route.is_multiple_of(100) {
                out.push_str(&format!(
                    "    rollout: {{ canary: c{route}, steps: [10, 50, 100], step_ms: 60000, gates: {{ max_error_rate: 0.05 }} }}\n"
                ));
            }
            route += 1;
        }
    }
    out
}

/// A file reload of a table whose rollouts each hold a step: the plans compiled from the decoded
/// table and every rollout's step weights set over it (what the controller hands compile),
/// against the same reload of the table without rollouts. Target: within 5%.
fn bench_rollouts(c: &mut Criterion) {
    let mut g = c.benchmark_group("reload_rollouts");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    let n = 10_000;
    let over = |m: &dyegate::config::model::RoutesConfig| {
        let mut o = Overrides::default();
        for (route, plan) in plans(m) {
            o.set_over(&route, plan.weights(10), &plan.base);
        }
        o
    };
    for (name, old_text, new_text) in [
        ("without", many_routes_yaml(n, 5), many_routes_yaml(n, 20)),
        ("with_100", with_rollouts(n, 5), with_rollouts(n, 20)),
    ] {
        let old = match routes_from_text_over(
            "bench.yaml",
            old_text.into_bytes(),
            None,
            usize::MAX,
            &mut |m| over(m),
        ) {
            Ok(l) => l,
            Err(e) => panic!("bench routes invalid: {e}"),
        };
        g.bench_with_input(BenchmarkId::new(format!("edit_{name}"), n), &n, |b, _| {
            b.iter(|| {
                routes_from_text_over(
                    "bench.yaml",
                    black_box(new_text.as_bytes().to_vec()),
                    old.reuse.as_ref(),
                    usize::MAX,
                    &mut |m| over(m),
                )
                .map(|l| l.overrides.iter().count())
                .unwrap_or(0)
            })
        });
        g.bench_with_input(BenchmarkId::new(format!("whole_{name}"), n), &n, |b, _| {
            b.iter(|| {
                routes_from_text_over(
                    "bench.yaml",
                    black_box(new_text.as_bytes().to_vec()),
                    None,
                    usize::MAX,
                    &mut |m| over(m),
                )
                .map(|l| l.overrides.iter().count())
                .unwrap_or(0)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_rollouts);
criterion_main!(benches);
