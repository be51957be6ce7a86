//! Cost of the trace work per request: the W3C header parsers and writers of
//! `dyegate_plugins::trace_context`, and the gateway's whole start-span + inject step
//! (`dyegate::telemetry::Tracing`) without an endpoint, with one at 1% and at 100% sampling,
//! and with an incoming sampled or unsampled parent (a recorded span is queued for export when
//! it is dropped; the span attributes written at the end of a request need a live session and
//! are not part of this step).
//!
//! Run: `cargo bench --bench trace_context` (figures: benches/load/README.md, tracing section)

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dyegate::config::settings::model::OtlpProtocol;
use dyegate::config::{ExportSettings, TracingSettings};
use dyegate::telemetry::Tracing;
use dyegate_plugins::trace_context::{
    check_tracestate, format_traceparent, set_baggage_member, TraceParent,
};
use pingora::http::RequestHeader;
use std::time::Duration;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACEPARENT_UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
const TRACESTATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,dd=s:1;o:rum";
const BAGGAGE: &str = "userId=alice,serverNode=DF%2028,isProduction=false";

fn parsers(c: &mut Criterion) {
    let mut g = c.benchmark_group("w3c");
    g.bench_function("traceparent parse", |b| {
        b.iter(|| TraceParent::parse(black_box(TRACEPARENT.as_bytes())))
    });
    let tp = TraceParent::parse(TRACEPARENT.as_bytes()).expect("valid");
    g.bench_function("traceparent format", |b| {
        b.iter(|| format_traceparent(black_box(&tp.trace_id), black_box(&tp.parent_id), true))
    });
    g.bench_function("tracestate check (3 members)", |b| {
        b.iter(|| check_tracestate([black_box(TRACESTATE.as_bytes())]))
    });
    g.bench_function("baggage set tag (3 members)", |b| {
        b.iter(|| set_baggage_member([black_box(BAGGAGE.as_bytes())], "env-tag", Some("canary")))
    });
    g.bench_function("baggage untouched (3 members, no tag)", |b| {
        b.iter(|| set_baggage_member([black_box(BAGGAGE.as_bytes())], "env-tag", None))
    });
    g.finish();
}

fn request(traceparent: Option<&str>) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/api/items", None).expect("request");
    req.insert_header("host", "shop.example.com").expect("host");
    if let Some(traceparent) = traceparent {
        req.insert_header("traceparent", traceparent)
            .expect("traceparent");
        req.insert_header("tracestate", TRACESTATE)
            .expect("tracestate");
        req.insert_header("baggage", BAGGAGE).expect("baggage");
    }
    req
}

fn settings(ratio: f64, export: bool) -> TracingSettings {
    TracingSettings {
        sample_ratio: ratio,
        baggage_key: "env-tag".into(),
        traceresponse: false,
        export: export.then(|| ExportSettings {
            endpoint: "http://127.0.0.1:4317".into(),
            protocol: OtlpProtocol::Grpc,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            // Nothing drains the queue here: once full, spans are counted dropped, as with a
            // collector that is down.
            queue_size: 2048,
            service_name: "bench".into(),
        }),
    }
}

fn gateway(c: &mut Criterion) {
    let mut g = c.benchmark_group("gateway start + inject");
    let new_trace = request(None);
    let incoming = request(Some(TRACEPARENT));
    let incoming_unsampled = request(Some(TRACEPARENT_UNSAMPLED));
    g.bench_function("baseline: upstream header clone only", |b| {
        b.iter(|| black_box(incoming.clone()))
    });
    // Random trace ids: at 1% about one request in a hundred is recorded, as in production.
    for (name, ratio, export, req) in [
        ("no endpoint, new trace", 0.0, false, &new_trace),
        ("no endpoint, incoming context", 0.0, false, &incoming),
        ("endpoint at 1%, new traces", 0.01, true, &new_trace),
        ("endpoint at 100%, new traces", 1.0, true, &new_trace),
        ("endpoint, incoming sampled context", 0.01, true, &incoming),
        (
            "endpoint, incoming unsampled context",
            0.01,
            true,
            &incoming_unsampled,
        ),
    ] {
        // The export service is not run: a recorded span is queued (then counted dropped).
        let (tracing, _export) = Tracing::new(&settings(ratio, export));
        g.bench_function(name, |b| {
            b.iter(|| {
                let trace = tracing.start(black_box(req));
                let mut up = req.clone();
                let _ = tracing.inject(&trace, &mut up);
                black_box(up);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parsers, gateway);
criterion_main!(benches);
