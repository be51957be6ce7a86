//! What a group of DNS names costs a request (issue 26): the decision, the request's member set
//! (what the proxy keeps in its context) and a pick, in a table of two fixed addresses (no DNS
//! name: the address book is not read) against a table whose group is one name with the same two
//! addresses; alone and with two threads at once (the named group's set is shared: its reference
//! count is one cache line for all threads). And the rebuild of a named group's set after its
//! name's addresses changed (once per change, by the first request that sees it).
//!
//! Run: `cargo bench --bench dns`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dyegate::config::routes_from_text;
use dyegate::routing::{
    AddressBook, Addresses, AllHealthy, Outcome, Parsed, RequestInfo, RouteTable,
};
use http::{HeaderMap, Method};
use std::net::IpAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn table(targets: &str) -> Arc<RouteTable> {
    let y = format!(
        "upstreams:\n  orders: {{ targets: [{targets}] }}\nroutes:\n  - {{ name: r, split: [{{ upstream: orders, weight: 1 }}] }}\n"
    );
    match routes_from_text("bench.yaml", y.into_bytes(), None) {
        Ok(l) => l.table,
        Err(e) => panic!("bench table invalid: {e}"),
    }
}

fn addrs(last: u8) -> Arc<[IpAddr]> {
    vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([127, 0, 0, last]),
    ]
    .into()
}

/// One request's routing work, as `proxy/` does it: decide, keep the member set, pick.
fn request(t: &RouteTable, book: &AddressBook, headers: &HeaderMap) {
    // Each request has its own lazily parsed cookies and query (as `proxy/`).
    let parsed = Parsed::default();
    let info = &RequestInfo {
        method: &Method::GET,
        host: "shop",
        path: "/",
        query: None,
        headers,
        client: None,
        parsed: &parsed,
    };
    // The request's one load of the address book, when its table has names (as `proxy/`).
    let loaded = t.has_names().then(|| book.load());
    let addresses = loaded.as_deref().unwrap_or(Addresses::none());
    let Outcome::Routed(d) = t.decide_with(info, &AllHealthy, addresses) else {
        panic!("not routed");
    };
    let Some(group) = t.group(d.group) else {
        return;
    };
    let kept = group.members(addresses).into_shared();
    let members = match &kept {
        Some(m) => m,
        None => group.fixed_members().expect("fixed"),
    };
    black_box(members.pick(&AllHealthy).map(|t| t.addr));
}

/// `iters` calls of `f` on each of two threads started together; the slower thread's time.
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

fn bench(c: &mut Criterion) {
    let fixed_table = table("\"127.0.0.1:8080\", \"127.0.0.2:8080\"");
    let named_table = table("\"orders.internal:8080\"");
    let book = AddressBook::default();
    book.store(book.load().with(&Arc::from("orders.internal"), addrs(2)));
    let headers = HeaderMap::new();
    let (fixed, named) = (fixed_table.as_ref(), named_table.as_ref());
    let mut g = c.benchmark_group("dns");
    g.bench_function("fixed group: decide, keep, pick", |b| {
        b.iter(|| request(fixed, &book, black_box(&headers)))
    });
    g.bench_function("named group: decide, keep, pick", |b| {
        b.iter(|| request(named, &book, black_box(&headers)))
    });
    g.bench_function("fixed group, 2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || request(fixed, &book, &headers)))
    });
    g.bench_function("named group, 2 threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || request(named, &book, &headers)))
    });
    // Every iteration sees a new book with other addresses: the set is built again.
    let group = &named.groups()[0];
    let host: Arc<str> = Arc::from("orders.internal");
    let mut last = 2u8;
    g.bench_function("named group: set rebuilt after a change", |b| {
        b.iter(|| {
            last = if last == 2 { 3 } else { 2 };
            book.store(book.load().with(&host, addrs(last)));
            black_box(group.members(&book.load()).targets().len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
