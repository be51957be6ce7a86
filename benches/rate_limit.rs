//! What a rate limit costs a request: `RateLimit::check` (sliding-window estimate from
//! pingora-limits' count-min sketches, then the count) for one hot key, and for keys that are
//! all different (1,000,000 distinct client addresses in turn: no map grows, the sketch is fixed);
//! the same from two threads at once. Before measuring, it prints the resident memory one limit
//! takes with 1,000,000 distinct keys pushed through it.
//!
//! Run: `cargo bench --bench rate_limit`

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dyegate::routing::{KeyOf, LimitKey, RateLimit};

fn ip(i: u32) -> KeyOf<'static> {
    KeyOf::Ip(Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn memory_under_a_million_keys() {
    let before = rss_kib();
    let limit = RateLimit::new(LimitKey::ClientIp, 1000, 200);
    let created = rss_kib();
    for i in 0..1_000_000 {
        let _ = limit.check(&ip(i));
    }
    let after = rss_kib();
    let again = {
        for i in 1_000_000..2_000_000 {
            let _ = limit.check(&ip(i));
        }
        rss_kib()
    };
    eprintln!(
        "rate limit memory: RSS {before} KiB before, {created} KiB with the limit, {after} KiB after 1,000,000 distinct keys, {again} KiB after 2,000,000 (+{} KiB for the limit, +{} KiB for the keys)",
        created.saturating_sub(before),
        again.saturating_sub(created)
    );
    black_box(limit);
}

fn bench(c: &mut Criterion) {
    memory_under_a_million_keys();
    let limit = RateLimit::new(LimitKey::ClientIp, u32::MAX / 2, 0);
    let hot = ip(1);
    c.bench_function("rate_limit/check one key", |b| {
        b.iter(|| black_box(limit.check(black_box(&hot))))
    });
    let mut i = 0u32;
    c.bench_function("rate_limit/check 1,000,000 distinct keys", |b| {
        b.iter(|| {
            i = (i + 1) % 1_000_000;
            black_box(limit.check(&ip(i)))
        })
    });
    let shared = Arc::new(RateLimit::new(LimitKey::ClientIp, u32::MAX / 2, 0));
    c.bench_function("rate_limit/check, 2 threads, 1 key", |b| {
        b.iter_custom(|iters| {
            let other = shared.clone();
            let t = std::thread::spawn(move || {
                for _ in 0..iters {
                    black_box(other.check(&ip(7)).is_ok());
                }
            });
            let start = std::time::Instant::now();
            for _ in 0..iters {
                black_box(shared.check(&ip(7)).is_ok());
            }
            let took = start.elapsed();
            let _ = t.join();
            took
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
