//! What health and outlier bookkeeping adds to a request: the decision alone against the
//! decision with a health view plus everything the proxy does per request for containment
//! (breaker count, retry budget, target in-flight count, outlier report of a success), when no
//! target is down (the common case) and when one of the group's targets is ejected.
//!
//! Run: `cargo bench --bench containment`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dyegate::config::routes_from_text;
use dyegate::contain::RetryBudgets;
use dyegate::health::{Attempt, HealthRegistry};
use dyegate::routing::{
    AddressBook, Addresses, Outcome, Parsed, RequestInfo, RouteTable, TargetHealth,
};
use http::{HeaderMap, Method};
use std::sync::Arc;

fn table() -> Arc<RouteTable> {
    let y = "upstreams:
  stable:
    targets: [\"127.0.0.1:1001\", \"127.0.0.2:1001\"]
    health: { http: { path: /healthz } }
    outlier: { consecutive_failures: 1, max_ejected_percent: 50 }
    max_in_flight: 100000
  canary: { targets: [\"127.0.0.3:1001\"] }
routes:
  - name: shop
    dye: { tags: { canary: canary } }
    retries: { attempts: 1 }
    split: [{ upstream: stable, weight: 95 }, { upstream: canary, weight: 5 }]
";
    match routes_from_text("bench.yaml", y.as_bytes().to_vec(), None) {
        Ok(l) => l.table,
        Err(e) => panic!("bench table invalid: {e}"),
    }
}

/// The containment work of one request, as `proxy/` does it.
fn contained(t: &RouteTable, r: &HealthRegistry, budgets: &RetryBudgets, info: &RequestInfo) {
    let view = r.view();
    let addresses = Addresses::none();
    let Outcome::Routed(d) = t.decide_with(info, &view, addresses) else {
        return;
    };
    let (Some(route), Some(group)) = (t.route(d.route_id), t.group(d.group)) else {
        return;
    };
    let load = r.enter_group(group);
    let budget = budgets.route(&route.name);
    budget.request(budgets.now_sec());
    let members = group.members(addresses);
    let Some(target) = members.pick(&view) else {
        return;
    };
    let attempt = r.enter_target(target.addr);
    r.report(group, &members, target.addr, Attempt::Success);
    black_box((load, attempt, view.any_down()));
}

fn bench(c: &mut Criterion) {
    let t = table();
    let headers = HeaderMap::new();
    let info = RequestInfo {
        method: &Method::GET,
        host: "shop",
        path: "/",
        query: None,
        headers: &headers,
        client: None,
        parsed: &Parsed::default(),
    };
    let mut g = c.benchmark_group("containment");
    g.bench_function("decide_and_pick_only", |b| {
        b.iter(|| {
            if let Outcome::Routed(d) = t.decide(black_box(&info)) {
                let group = t.group(d.group).and_then(|g| g.fixed_members());
                black_box(group.and_then(|m| m.next_target()));
            }
        })
    });
    let r = HealthRegistry::new(Arc::default());
    r.sync(&t, AddressBook::empty());
    let budgets = RetryBudgets::default();
    g.bench_function("with_bookkeeping_all_healthy", |b| {
        b.iter(|| contained(&t, &r, &budgets, black_box(&info)))
    });
    // Eject one stable target: every request now asks per target.
    let stable = &t.groups()[0];
    let members = stable.members(Addresses::none());
    r.report(
        stable,
        &members,
        members.targets()[0].addr,
        Attempt::Failure,
    );
    assert!(r.view().any_down());
    g.bench_function("with_bookkeeping_one_ejected", |b| {
        b.iter(|| contained(&t, &r, &budgets, black_box(&info)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
