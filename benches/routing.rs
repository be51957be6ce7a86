//! The whole routing decision (route match through the host/path index, dye tag, split) on
//! tables of 10, 1,000 and 10,000 routes. Target: under 1 µs per decision at 10,000 routes,
//! roughly flat in route count.
//!
//! Run: `cargo bench --bench routing`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dyegate::config::routes_from_text;
use dyegate::routing::{Outcome, RequestInfo, RouteTable};
use http::{HeaderMap, HeaderValue, Method};
use std::fmt::Write;

/// `n` routes, each with its own host and path prefix, tags and a 95/5 split; every fourth
/// route is sticky by header, every fifth matches on a header too.
fn table(n: usize) -> std::sync::Arc<RouteTable> {
    let mut y = String::from("upstreams:\n");
    for i in 0..n {
        let _ = writeln!(
            y,
            "  s{i}: {{ targets: [\"127.0.0.1:{}\", \"127.0.0.2:{}\"] }}",
            1000 + i % 60000,
            1000 + i % 60000
        );
        let _ = writeln!(
            y,
            "  c{i}: {{ targets: [\"127.0.0.3:{}\"] }}",
            1000 + i % 60000
        );
    }
    y.push_str("routes:\n");
    for i in 0..n {
        let _ = writeln!(y, "  - name: r{i}");
        let _ = write!(
            y,
            "    match: {{ host: svc{}.example.com, path_prefix: /api/v{}",
            i % 100,
            i / 100
        );
        if i % 5 == 0 {
            y.push_str(", headers: { x-client: [web, mobile] }");
        }
        y.push_str(" }\n");
        let _ = writeln!(y, "    dye: {{ tags: {{ canary: c{i}, feat-{i}: c{i} }} }}");
        let _ = writeln!(
            y,
            "    split: [{{ upstream: s{i}, weight: 95 }}, {{ upstream: c{i}, weight: 5 }}]"
        );
        if i % 4 == 0 {
            y.push_str("    sticky: header:x-user-id\n");
        }
    }
    match routes_from_text("bench.yaml", y.into_bytes(), None) {
        Ok(l) => l.table,
        Err(e) => panic!("bench table invalid: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    for n in [10usize, 1_000, 10_000] {
        let t = table(n);
        // The last route: worst case for a linear scan, a few hash probes for the index.
        let last = n - 1;
        let host = format!("svc{}.example.com", last % 100);
        let path = format!("/api/v{}/items/42", last / 100);
        let method = Method::GET;
        let mut untagged = HeaderMap::new();
        untagged.insert("x-client", HeaderValue::from_static("web"));
        untagged.insert("x-user-id", HeaderValue::from_static("user-1234"));
        let mut tagged = untagged.clone();
        tagged.insert("x-env-tag", HeaderValue::from_static("canary"));
        let peer = "10.1.2.3".parse().ok();
        for (name, headers) in [("split", &untagged), ("tag", &tagged)] {
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let info = RequestInfo {
                        method: &method,
                        host: &host,
                        path: &path,
                        headers,
                        client: peer,
                    };
                    match t.decide(black_box(&info)) {
                        Outcome::Routed(d) => black_box(d.group),
                        _ => panic!("bench request must route"),
                    }
                })
            });
        }
        let miss = format!("/nothing/{n}");
        g.bench_with_input(BenchmarkId::new("no-route", n), &n, |b, _| {
            b.iter(|| {
                let info = RequestInfo {
                    method: &method,
                    host: &host,
                    path: &miss,
                    headers: &untagged,
                    client: peer,
                };
                black_box(matches!(t.decide(black_box(&info)), Outcome::NoRoute))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
