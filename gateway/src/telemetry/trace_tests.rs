//! Unit tests of `trace.rs`.

use super::*;
use crate::config::settings::model::OtlpProtocol;
use crate::config::ExportSettings;
use std::time::Duration;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn tracing(ratio: f64, endpoint: bool) -> Tracing {
    let settings = TracingSettings {
        sample_ratio: ratio,
        baggage_key: "env-tag".into(),
        traceresponse: false,
        // Nothing runs the export service: recorded spans are queued, then counted dropped.
        export: endpoint.then(|| ExportSettings {
            endpoint: "http://127.0.0.1:4317".into(),
            protocol: OtlpProtocol::Grpc,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            queue_size: 16,
            service_name: "test".into(),
        }),
    };
    Tracing::new(&settings).0
}

fn request(traceparent: Option<&str>) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    if let Some(tp) = traceparent {
        req.insert_header(TRACEPARENT, tp).expect("traceparent");
    }
    req
}

/// The `traceparent` the upstream gets.
fn sent(tracing: &Tracing, trace: &RequestTrace) -> String {
    let mut up = request(None);
    tracing.inject(trace, &mut up).expect("inject");
    let value = up.headers.get(TRACEPARENT).expect("traceparent sent");
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn an_unsampled_parent_gets_a_new_span_id_and_no_recording() {
    let tracing = tracing(1.0, true);
    let trace = tracing.start(&request(Some(&format!("00-{TRACE}-{PARENT}-00"))));
    assert!(!trace.sampled());
    assert!(!trace.is_recording());
    assert_eq!(hex(&trace.trace_id()), TRACE);
    assert_ne!(trace.span_id(), [0; 8]);
    assert_ne!(hex(&trace.span_id()), PARENT);
    let span = hex(&trace.span_id());
    assert_eq!(sent(&tracing, &trace), format!("00-{TRACE}-{span}-00"));
}

#[test]
fn a_sampled_parent_is_recorded_in_its_trace_whatever_the_ratio() {
    let tracing = tracing(0.0, true);
    let trace = tracing.start(&request(Some(&format!("00-{TRACE}-{PARENT}-01"))));
    assert!(trace.sampled());
    assert!(trace.is_recording());
    assert_eq!(hex(&trace.trace_id()), TRACE);
    assert_ne!(hex(&trace.span_id()), PARENT);
    let span = hex(&trace.span_id());
    assert_eq!(sent(&tracing, &trace), format!("00-{TRACE}-{span}-01"));
}

#[test]
fn a_new_trace_is_recorded_exactly_when_the_ratio_samples_its_id() {
    let tracing = tracing(0.5, true);
    let ratio = Sampler::TraceIdRatioBased(0.5);
    let mut recorded = 0;
    for _ in 0..200 {
        let trace = tracing.start(&request(None));
        let by_id = ratio
            .should_sample(
                None,
                TraceId::from_bytes(trace.trace_id()),
                "",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision
            == SamplingDecision::RecordAndSample;
        assert_eq!(trace.sampled(), by_id);
        assert_eq!(trace.is_recording(), by_id);
        assert_ne!(trace.span_id(), [0; 8]);
        recorded += usize::from(by_id);
    }
    assert!(
        (1..200).contains(&recorded),
        "both decisions seen: {recorded} of 200 recorded"
    );
}

#[test]
fn a_new_ratio_set_through_the_handle_decides_the_next_new_traces() {
    let tracing = tracing(0.0, true);
    let new_traces = |n: usize| {
        (0..n)
            .map(|_| tracing.start(&request(None)))
            .filter(|t| t.sampled() && t.is_recording())
            .count()
    };
    assert_eq!(new_traces(50), 0);
    tracing.sample_ratio().set(1.0);
    assert_eq!(
        new_traces(50),
        50,
        "recorded by the SDK too, not only flagged"
    );
    // A clone of the proxy's tracing (one per listener service) shares the handle.
    let clone = tracing.clone();
    tracing.sample_ratio().set(0.0);
    assert!(!clone.start(&request(None)).sampled());
}

#[test]
fn the_sdk_records_a_new_trace_under_the_id_drawn_for_it() {
    let tracing = tracing(1.0, true);
    let (_, tracer) = tracing.tracer.as_ref().expect("endpoint configured");
    let id = [0x5a; 16];
    let span = record(tracer, &request(None), None, id, TraceState::NONE);
    assert!(span.is_recording());
    assert_eq!(span.span_context().trace_id(), TraceId::from_bytes(id));
    assert_eq!(DRAWN_TRACE_ID.with(Cell::get), None, "handed over once");
}

#[test]
fn without_an_endpoint_the_ratio_sets_the_flag_and_nothing_is_recorded() {
    for (ratio, sampled) in [(0.0, false), (1.0, true)] {
        let tracing = tracing(ratio, false);
        let trace = tracing.start(&request(None));
        assert_eq!(trace.sampled(), sampled);
        assert!(!trace.is_recording());
        assert_ne!(trace.trace_id(), [0; 16]);
        assert_ne!(trace.span_id(), [0; 8]);
    }
}

#[path = "trace_propagation_tests.rs"]
mod propagation;
