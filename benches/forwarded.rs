//! Cost of the client's address and the forwarding headers per request (issue 26): finding the
//! one client address (`dyegate_plugins::Forwarding::client`), deciding the header edits and
//! writing them on the upstream request (`dyegate::proxy::forwarded`), for the default policy
//! (no trusted proxy, the X-Forwarded trio), a trusted proxy with all three header kinds, and a
//! 36 KB `X-Forwarded-For` from a trusted proxy (the bounded walk). The decision alone (client
//! and edits) is measured apart from the writes into Pingora's request header.
//!
//! Run: `cargo bench --bench forwarded` (figures: docs/benchmarks.md, "Forwarded headers")

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use dyegate::proxy::forwarded::{client_of, proto, write_upstream};
use dyegate_plugins::forwarded::{HeaderSet, Hop};
use dyegate_plugins::Forwarding;
use pingora::http::RequestHeader;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;

fn request(xff: Option<&str>) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/api/items", None).expect("request");
    req.insert_header("host", "shop.example.com").expect("host");
    req.insert_header("user-agent", "bench").expect("ua");
    if let Some(xff) = xff {
        req.insert_header("x-forwarded-for", xff).expect("xff");
        req.insert_header("x-forwarded-proto", "https")
            .expect("xfp");
    }
    req
}

fn peer(s: &str) -> PeerAddr {
    PeerAddr::Inet(s.parse().expect("socket address"))
}

/// One request's whole forwarded step: the client address (request_filter), then the edits
/// written on the upstream request (upstream_request_filter).
fn step(f: &Forwarding, peer: &PeerAddr, downstream: &RequestHeader, upstream: &mut RequestHeader) {
    let client = client_of(f, Some(peer), &downstream.headers);
    let hop = Hop {
        peer: peer.as_inet().map(|a| a.ip()),
        client: client.map(|c| c.ip),
        proto: proto(false),
        host: "shop.example.com",
    };
    write_upstream(f, &hop, upstream).expect("written");
}

fn forwarded(c: &mut Criterion) {
    let default = Forwarding::new(
        Vec::new(),
        HeaderSet {
            x_forwarded: true,
            ..Default::default()
        },
    );
    let trusted = Forwarding::new(
        vec!["10.0.0.0/8".parse().expect("net")],
        HeaderSet {
            x_forwarded: true,
            forwarded: true,
            x_real_ip: true,
        },
    );
    let stranger = peer("192.0.2.1:51000");
    let proxy = peer("10.0.0.1:51000");
    let plain = request(None);
    let behind = request(Some("198.51.100.7, 10.0.0.9"));
    let long = "1.2.3.4, ".repeat(4000);
    let garbage = request(Some(&long));

    let mut g = c.benchmark_group("forwarded");
    g.bench_function("client: default, untrusted peer", |b| {
        b.iter(|| client_of(&default, Some(black_box(&stranger)), &plain.headers))
    });
    g.bench_function("client: trusted proxy, 2 entries", |b| {
        b.iter(|| client_of(&trusted, Some(black_box(&proxy)), &behind.headers))
    });
    g.bench_function("client: trusted proxy, 36 KB X-Forwarded-For", |b| {
        b.iter(|| client_of(&trusted, Some(black_box(&proxy)), &garbage.headers))
    });
    g.bench_function("decision: default, untrusted peer (client + edits)", |b| {
        b.iter(|| {
            let client = client_of(&default, Some(black_box(&stranger)), &plain.headers);
            default.edits(&Hop {
                peer: stranger.as_inet().map(|a| a.ip()),
                client: client.map(|c| c.ip),
                proto: proto(false),
                host: "shop.example.com",
            })
        })
    });
    g.bench_function(
        "request: default, untrusted peer (client + 3 headers)",
        |b| {
            b.iter_batched(
                || plain.clone(),
                |mut up| {
                    step(&default, &stranger, &plain, &mut up);
                    up
                },
                BatchSize::SmallInput,
            )
        },
    );
    g.bench_function("request: trusted proxy, all 5 headers", |b| {
        b.iter_batched(
            || behind.clone(),
            |mut up| {
                step(&trusted, &proxy, &behind, &mut up);
                up
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function(
        "request header clone (the setup above, for reference)",
        |b| b.iter(|| black_box(&plain).clone()),
    );
    g.finish();
}

criterion_group!(benches, forwarded);
criterion_main!(benches);
