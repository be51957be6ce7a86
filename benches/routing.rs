//! The whole routing decision (route match through the host/path index, dye tag, split) on
//! tables of 10, 1,000 and 10,000 routes, 10% of them with a path regex, a cookie or a query
//! condition. Target: under 1 µs per decision at 10,000 routes, roughly flat in route count.
//! After criterion's means, p50 and p99 of single decisions (each timed alone, the cost of
//! the clock taken off) for each kind of request.
//!
//! Run: `cargo bench --bench routing`

use criterion::{black_box, criterion_group, BenchmarkId, Criterion};
use dyegate::config::routes_from_text;
use dyegate::routing::{Outcome, Parsed, RequestInfo, RouteTable};
use http::{HeaderMap, HeaderValue, Method};
use std::fmt::Write;

/// `n` routes, each with its own host and path prefix, tags and a 95/5 split; every fourth
/// route is sticky by header, every fifth matches on a header too; one in ten has a richer
/// condition ([`Rich`]).
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
        let path = match Rich::of(i) {
            Some(Rich::Regex) => format!("path: {{ regex: \"^/api/v{}/items/[0-9]+$\" }}", i / 100),
            _ => format!("path_prefix: /api/v{}", i / 100),
        };
        let _ = write!(y, "    match: {{ host: svc{}.example.com, {path}", i % 100);
        if i % 5 == 0 {
            y.push_str(", headers: { x-client: [web, mobile] }");
        }
        match Rich::of(i) {
            Some(Rich::Cookie) => y.push_str(", cookies: { plan: { regex: \"^pro\" } }"),
            Some(Rich::Query) => y.push_str(", query: { env: [canary] }"),
            _ => {}
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

/// The richer conditions, one route in ten: a path regex, a cookie regex, a query value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rich {
    Regex,
    Cookie,
    Query,
}

impl Rich {
    const ALL: [Rich; 3] = [Rich::Regex, Rich::Cookie, Rich::Query];

    fn of(i: usize) -> Option<Rich> {
        match i % 30 {
            3 => Some(Rich::Regex),
            13 => Some(Rich::Cookie),
            23 => Some(Rich::Query),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Rich::Regex => "path-regex",
            Rich::Cookie => "cookie",
            Rich::Query => "query",
        }
    }
}

/// One kind of request on a table of `n` routes: the route it goes to (the last of its kind,
/// the worst case for a scan), and what it carries.
struct Case {
    name: String,
    host: String,
    path: String,
    query: Option<&'static str>,
    headers: HeaderMap,
    routes: bool,
}

fn cases(n: usize) -> Vec<Case> {
    let mut untagged = HeaderMap::new();
    untagged.insert("x-client", HeaderValue::from_static("web"));
    untagged.insert("x-user-id", HeaderValue::from_static("user-1234"));
    untagged.insert(
        "cookie",
        HeaderValue::from_static("sid=abc123; plan=pro-7; theme=dark"),
    );
    let mut tagged = untagged.clone();
    tagged.insert("x-env-tag", HeaderValue::from_static("canary"));
    let at = |name: &str, i: usize, headers: &HeaderMap, query| Case {
        name: name.to_string(),
        host: format!("svc{}.example.com", i % 100),
        path: format!("/api/v{}/items/42", i / 100),
        query,
        headers: headers.clone(),
        routes: true,
    };
    let last = n - 1;
    let mut out = vec![
        at("split", last, &untagged, Some("page=2&sort=asc")),
        at("tag", last, &tagged, Some("page=2&sort=asc")),
    ];
    for kind in Rich::ALL {
        if let Some(i) = (0..n).rev().find(|i| Rich::of(*i) == Some(kind)) {
            out.push(at(kind.name(), i, &untagged, Some("page=2&env=canary")));
        }
    }
    out.push(Case {
        path: format!("/nothing/{n}"),
        routes: false,
        ..at("no-route", last, &untagged, None)
    });
    out
}

fn decide(t: &RouteTable, method: &Method, c: &Case, peer: Option<std::net::IpAddr>) -> bool {
    let parsed = Parsed::default();
    let info = RequestInfo {
        method,
        host: &c.host,
        path: &c.path,
        query: c.query,
        headers: &c.headers,
        client: peer,
        parsed: &parsed,
    };
    matches!(t.decide(black_box(&info)), Outcome::Routed(_))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    let method = Method::GET;
    let peer = "10.1.2.3".parse().ok();
    for n in [10usize, 1_000, 10_000] {
        let t = table(n);
        for case in cases(n) {
            assert_eq!(
                decide(&t, &method, &case, peer),
                case.routes,
                "{}",
                case.name
            );
            g.bench_with_input(BenchmarkId::new(&case.name, n), &n, |b, _| {
                b.iter(|| black_box(decide(&t, &method, &case, peer)))
            });
        }
    }
    g.finish();
}

/// p50 and p99 of single decisions: each decision timed alone, the median cost of reading the
/// clock twice taken off.
fn percentiles() {
    const SAMPLES: usize = 200_000;
    let method = Method::GET;
    let peer = "10.1.2.3".parse().ok();
    let clock = {
        let mut d: Vec<u64> = (0..SAMPLES)
            .map(|_| {
                let t0 = std::time::Instant::now();
                black_box(());
                t0.elapsed().as_nanos() as u64
            })
            .collect();
        d.sort_unstable();
        d[d.len() / 2]
    };
    println!("\nsingle decisions (ns, clock cost {clock} ns taken off), {SAMPLES} each:");
    println!(
        "{:>8} {:>12} {:>6} {:>6}",
        "routes", "request", "p50", "p99"
    );
    for n in [10usize, 1_000, 10_000] {
        let t = table(n);
        for case in cases(n) {
            let mut d: Vec<u64> = (0..SAMPLES)
                .map(|_| {
                    let t0 = std::time::Instant::now();
                    black_box(decide(&t, &method, &case, peer));
                    (t0.elapsed().as_nanos() as u64).saturating_sub(clock)
                })
                .collect();
            d.sort_unstable();
            let p = |q: f64| d[((d.len() - 1) as f64 * q) as usize];
            println!("{n:>8} {:>12} {:>6} {:>6}", case.name, p(0.50), p(0.99));
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only on a full run (not `--list`, not `--test`, not a filtered run of some benches).
    if std::env::args().skip(1).all(|a| a == "--bench") {
        percentiles();
    }
}
