//! The gateway's part in a trace, phase by phase of a proxied request: read the incoming W3C
//! context and start the gateway span ([`Tracing::start`], in `request_filter`), write
//! `traceparent` / `tracestate` / `baggage` on the upstream request ([`Tracing::inject`]), and
//! finish the span with the OpenTelemetry HTTP attributes ([`RequestTrace::finish`], in
//! `logging`).
//!
//! Sampling is parent-based: a valid incoming `traceparent` decides, otherwise the root ratio
//! does (on the trace id, like the SDK's `TraceIdRatioBased`; the ratio is read per new trace
//! from a [`SampleRatio`] a SIGHUP can change). The decision is made before the SDK is involved:
//! an unsampled request, or any request without an endpoint, only gets ids and the flag sent
//! upstream; with an endpoint, the SDK tracer records the sampled spans (it is only ever asked
//! for those, so its own sampler records whatever it is asked for) and the export queue takes
//! them when they end.

use super::export::{self, ExportService, ExportStats};
use super::sample_ratio::SampleRatio;
use crate::config::TracingSettings;
use crate::downstream::fields::{header_value, Fields, Name};
use crate::routing::{Outcome, RouteTable};
use dyegate_plugins::trace_context::{
    check_tracestate, format_traceparent, set_baggage_member, BaggageEdit, TraceParent, BAGGAGE,
    FLAG_SAMPLED, TRACEPARENT, TRACEPARENT_LEN, TRACESTATE,
};
use dyegate_plugins::ClientAddr;
use http::HeaderName;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags,
    TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SdkTracer, SdkTracerProvider,
    ShouldSample, Span as SdkSpan,
};
use opentelemetry_sdk::Resource;
use pingora::http::RequestHeader;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::proxy::Session;
use pingora::Error;
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

/// The trace headers as names, for lookups: a `&str` is parsed into a name on every lookup.
static TRACESTATE_NAME: HeaderName = HeaderName::from_static(TRACESTATE);
static BAGGAGE_NAME: HeaderName = HeaderName::from_static(BAGGAGE);
/// The two the gateway writes upstream (`downstream::fields`).
static TRACEPARENT_FIELD: Name = Name::new(TRACEPARENT);
static BAGGAGE_FIELD: Name = Name::new(BAGGAGE);

/// Trace settings and the tracer, shared by every request of the proxy service.
#[derive(Clone)]
pub struct Tracing {
    /// `Some` when an endpoint is configured.
    tracer: Option<(SdkTracerProvider, SdkTracer)>,
    /// The share of new traces sampled, decided in [`Tracing::start`] on the trace id.
    ratio: SampleRatio,
    ids: RandomIdGenerator,
    baggage_key: String,
    traceresponse: bool,
    stats: Arc<ExportStats>,
}

/// One request's trace: ids, what to do with the context headers, and the recording span.
pub struct RequestTrace {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
    /// Forward the incoming `tracestate` (the `traceparent` and the `tracestate` were valid).
    keep_tracestate: bool,
    /// The dye tag the request travels with upstream (for `baggage`).
    tag: Option<Box<str>>,
    /// `Some` while recording (sampled, with an endpoint). Boxed: an SDK span is ~300 bytes,
    /// and every request's context (and the future Pingora boxes per request) would carry them
    /// for the few that record.
    span: Option<Box<SdkSpan>>,
    /// The upstream the request was last connected to.
    upstream: Option<SocketAddr>,
    /// The request's client (`client.address`): the peer, or the address trusted proxies
    /// forwarded.
    client: Option<ClientAddr>,
}

impl Tracing {
    /// The tracer for `settings`, and the background service that exports its spans when an
    /// endpoint is configured (add it to the server; nothing is exported without it).
    pub fn new(settings: &TracingSettings) -> (Tracing, Option<ExportService>) {
        let stats = Arc::new(ExportStats::default());
        let (tracer, service) = match &settings.export {
            None => (None, None),
            Some(export) => {
                let resource = Resource::builder()
                    .with_service_name(export.service_name.clone())
                    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build();
                let (processor, service) =
                    export::queue(export.clone(), resource.clone(), Arc::clone(&stats));
                let provider = SdkTracerProvider::builder()
                    // Asked only for the spans `start` sampled: it records them all.
                    .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
                    .with_id_generator(DrawnTraceIds::default())
                    .with_span_processor(processor)
                    .with_resource(resource)
                    .build();
                let tracer = provider.tracer_with_scope(
                    InstrumentationScope::builder("dyegate")
                        .with_version(env!("CARGO_PKG_VERSION"))
                        .build(),
                );
                (Some((provider, tracer)), Some(service))
            }
        };
        let tracing = Tracing {
            tracer,
            ratio: SampleRatio::new(settings.sample_ratio),
            ids: RandomIdGenerator::default(),
            baggage_key: settings.baggage_key.clone(),
            traceresponse: settings.traceresponse,
            stats,
        };
        (tracing, service)
    }

    /// Propagation with the defaults: new traces unsampled, nothing exported.
    pub fn propagate_only() -> Tracing {
        Tracing::new(&TracingSettings::default()).0
    }

    /// The root ratio's handle: setting it changes the sampling of the next new traces.
    pub fn sample_ratio(&self) -> SampleRatio {
        self.ratio.clone()
    }

    /// Counters of the export pipeline (all zero without an endpoint).
    pub fn stats(&self) -> Arc<ExportStats> {
        Arc::clone(&self.stats)
    }

    /// Starts the gateway span of a request, as a child of its valid incoming `traceparent`, or
    /// of a new trace.
    ///
    /// Sampling is decided here, before the SDK is involved: a request that is not sampled (most
    /// of them at a low ratio) only draws ids, and never builds an SDK context, span builder or
    /// span.
    pub fn start(&self, req: &RequestHeader) -> RequestTrace {
        let values = |name| req.headers.get_all(name).into_iter().map(|v| v.as_bytes());
        let parent = TraceParent::from_headers(values(TRACEPARENT_FIELD.parsed())).ok();
        // Empty or whitespace-only tracestate is accepted but not sent on.
        let keep_tracestate = parent.is_some()
            && matches!(check_tracestate(values(&TRACESTATE_NAME)), Ok(n) if n > 0);
        // Parent-based: the incoming flag decides, else the root ratio on the new trace id (the
        // decision the SDK's ParentBased(TraceIdRatioBased) sampler makes on the same ids).
        let (trace_id, sampled) = match &parent {
            Some(p) => (p.trace_id, p.sampled()),
            None => {
                let id = self.new_trace_id();
                (id, self.sample_root(id))
            }
        };
        let mut trace = RequestTrace {
            trace_id,
            span_id: [0; 8],
            sampled,
            keep_tracestate,
            tag: None,
            span: None,
            upstream: None,
            client: None,
        };
        let span = match &self.tracer {
            Some((_, tracer)) if sampled => {
                // The exported span carries the vendor state it continues (W3C: tracestate
                // belongs to the trace context); only for recorded spans, it costs a parse.
                let state = if keep_tracestate {
                    incoming_trace_state(values(&TRACESTATE_NAME))
                } else {
                    TraceState::NONE
                };
                Some(record(tracer, req, parent.as_ref(), trace_id, state))
            }
            _ => None,
        };
        match span {
            // The span's own ids (its span id is the SDK's), unless the SDK gave an empty
            // context (provider shut down): the request then goes on with ids of its own.
            Some(span) if span.span_context().is_valid() => {
                let sc = span.span_context();
                trace.trace_id = sc.trace_id().to_bytes();
                trace.span_id = sc.span_id().to_bytes();
                trace.sampled = sc.is_sampled();
                trace.span = span.is_recording().then(|| Box::new(span));
            }
            _ => trace.span_id = self.new_span_id(),
        }
        trace
    }

    fn new_trace_id(&self) -> [u8; 16] {
        loop {
            let id = self.ids.new_trace_id();
            if id != TraceId::INVALID {
                return id.to_bytes();
            }
        }
    }

    fn new_span_id(&self) -> [u8; 8] {
        loop {
            let id = self.ids.new_span_id();
            if id != SpanId::INVALID {
                return id.to_bytes();
            }
        }
    }

    fn sample_root(&self, trace_id: [u8; 16]) -> bool {
        let decision = Sampler::TraceIdRatioBased(self.ratio.get())
            .should_sample(
                None,
                TraceId::from_bytes(trace_id),
                "",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision;
        decision == SamplingDecision::RecordAndSample
    }

    /// Writes the trace context on the upstream request: `traceparent` with the gateway span as
    /// parent, `tracestate` kept or removed, the dye tag set in (or removed from) `baggage`.
    /// Idempotent, so a retried attempt gets the same headers.
    pub fn inject(&self, trace: &RequestTrace, up: &mut dyn Fields) -> pingora::Result<()> {
        let traceparent = format_traceparent(&trace.trace_id, &trace.span_id, trace.sampled);
        up.set(&TRACEPARENT_FIELD, header_value(&traceparent[..])?)?;
        if !trace.keep_tracestate {
            up.remove(&TRACESTATE_NAME);
        }
        let baggage = set_baggage_member(
            up.headers()
                .get_all(&BAGGAGE_NAME)
                .into_iter()
                .map(|v| v.as_bytes()),
            &self.baggage_key,
            trace.tag.as_deref(),
        );
        match baggage {
            BaggageEdit::Unchanged => {}
            BaggageEdit::Remove => up.remove(&BAGGAGE_NAME),
            BaggageEdit::Set(value) => up.set(&BAGGAGE_FIELD, header_value(value)?)?,
        }
        Ok(())
    }

    /// The `baggage` member the request's dye tag is written as (`tracing.baggage_key`).
    pub fn baggage_key(&self) -> &str {
        &self.baggage_key
    }

    /// The `traceresponse` value for the client, when configured.
    pub fn traceresponse(&self, trace: &RequestTrace) -> Option<[u8; TRACEPARENT_LEN]> {
        self.traceresponse
            .then(|| format_traceparent(&trace.trace_id, &trace.span_id, trace.sampled))
    }
}

/// Builds the recording span of a sampled request in the SDK tracer. A new trace keeps the id
/// [`Tracing::start`] drew and sampled on: it is handed to the provider's [`DrawnTraceIds`]
/// for the one `new_trace_id` call this `build_with_context` makes.
fn record(
    tracer: &SdkTracer,
    req: &RequestHeader,
    parent: Option<&TraceParent>,
    trace_id: [u8; 16],
    state: TraceState,
) -> SdkSpan {
    let cx = match parent {
        Some(p) => Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes(p.trace_id),
            SpanId::from_bytes(p.parent_id),
            TraceFlags::new(p.flags & FLAG_SAMPLED),
            true,
            state,
        )),
        None => {
            DRAWN_TRACE_ID.with(|cell| cell.set(Some(TraceId::from_bytes(trace_id))));
            Context::new()
        }
    };
    let builder =
        SpanBuilder::from_name(span_name(req.method.as_str())).with_kind(SpanKind::Server);
    let span = tracer.build_with_context(builder, &cx);
    // Not left for the next trace of this thread when the SDK did not ask (provider shut down).
    DRAWN_TRACE_ID.with(|cell| cell.set(None));
    span
}

/// The incoming `tracestate` (already checked by `check_tracestate`; its lines are one list) as
/// the SDK's value, for the exported span; one the SDK refuses is left out of the span only.
fn incoming_trace_state<'a>(lines: impl Iterator<Item = &'a [u8]>) -> TraceState {
    let mut list = String::new();
    for line in lines {
        let Ok(line) = std::str::from_utf8(line) else {
            return TraceState::NONE;
        };
        if !list.is_empty() {
            list.push(',');
        }
        list.push_str(line);
    }
    list.parse().unwrap_or(TraceState::NONE)
}

thread_local! {
    /// The trace id [`record`] hands to the SDK's id generator. The SDK draws a new trace's id
    /// itself, inside `build_with_context`, on the calling thread, and offers no way to pass
    /// one in; this cell is that way, set and cleared around the call.
    static DRAWN_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The provider's id generator: a new trace's id is the one the gateway drew and sampled on
/// (from [`DRAWN_TRACE_ID`]), so the ratio decision holds for the recorded trace id, as when the
/// SDK decides alone. Span ids, and trace ids asked for outside [`record`], are random.
#[derive(Debug, Default)]
struct DrawnTraceIds {
    random: RandomIdGenerator,
}

impl IdGenerator for DrawnTraceIds {
    fn new_trace_id(&self) -> TraceId {
        DRAWN_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

/// Span name per the HTTP semantic conventions: the method (no route template is known).
fn span_name(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "HTTP",
    }
}

impl RequestTrace {
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The trace id as 32 lowercase hex digits (for the access log).
    pub fn trace_id_hex(&self) -> String {
        let tp = format_traceparent(&self.trace_id, &self.span_id, false);
        String::from_utf8_lossy(&tp[3..35]).into_owned()
    }

    /// The gateway span's id: the parent id the upstream sees.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// Whether the span is recorded (sampled, and exported).
    pub fn is_recording(&self) -> bool {
        self.span.is_some()
    }

    /// Notes the routing decision: the tag for `baggage`, and the `dyegate.*` attributes.
    pub fn record_outcome(
        &mut self,
        table: &RouteTable,
        routing_version: u64,
        outcome: &Outcome<'_>,
    ) {
        let (route_id, decision) = match outcome {
            Outcome::Routed(d) => {
                self.tag = d.tag.map(Box::from);
                (Some(d.route_id), d.reason.as_str())
            }
            Outcome::NoRoute => (None, "no_route"),
            Outcome::RejectedTag { route_id } => (Some(*route_id), "rejected_tag"),
            Outcome::NoHealthyTarget { route_id, tag, .. } => {
                self.tag = tag.map(Box::from);
                (Some(*route_id), "no_healthy_target")
            }
        };
        let Some(span) = self.span.as_mut() else {
            return;
        };
        span.set_attribute(KeyValue::new("dyegate.decision", decision));
        span.set_attribute(KeyValue::new(
            "dyegate.routing_version",
            i64::try_from(routing_version).unwrap_or(i64::MAX),
        ));
        if let Some(route) = route_id.and_then(|id| table.route(id)) {
            span.set_attribute(KeyValue::new("dyegate.route", route.name.to_string()));
        }
        if let Outcome::Routed(d) = outcome {
            if let Some(group) = table.group(d.group) {
                span.set_attribute(KeyValue::new(
                    "dyegate.upstream_group",
                    group.name.to_string(),
                ));
            }
        }
        if let Some(tag) = &self.tag {
            span.set_attribute(KeyValue::new("dyegate.env_tag", tag.to_string()));
        }
    }

    /// Notes the request's one client address (see `dyegate_plugins::forwarded`).
    pub fn set_client(&mut self, client: Option<ClientAddr>) {
        self.client = client;
    }

    /// Notes the upstream the request is connected to (the last one after retries).
    pub fn connected(&mut self, peer: &PeerAddr) {
        self.upstream = peer.as_inet().copied();
    }

    /// Notes a failed connect attempt as a span event.
    pub fn connect_failed(&mut self, peer: &PeerAddr, error: &Error) {
        self.upstream = peer.as_inet().copied();
        if let Some(span) = self.span.as_mut() {
            let mut attributes = vec![KeyValue::new("error.type", error.etype().as_str())];
            if let Some(addr) = peer.as_inet() {
                attributes.push(KeyValue::new("network.peer.address", addr.ip().to_string()));
                attributes.push(KeyValue::new("network.peer.port", i64::from(addr.port())));
            }
            span.add_event("connect_failed", attributes);
        }
    }

    /// Ends the span with the request's HTTP attributes and its status: error on a 5xx answer
    /// and on a request that failed without one.
    pub fn finish(&mut self, session: &Session, error: Option<&Error>) {
        let Some(mut span) = self.span.take() else {
            return;
        };
        let req = session.req_header();
        let method = req.method.as_str();
        let known = span_name(method) != "HTTP";
        span.set_attribute(KeyValue::new(
            "http.request.method",
            if known {
                method.to_string()
            } else {
                "_OTHER".to_string()
            },
        ));
        if !known {
            span.set_attribute(KeyValue::new(
                "http.request.method_original",
                method.to_string(),
            ));
        }
        span.set_attribute(KeyValue::new("url.path", req.uri.path().to_string()));
        span.set_attribute(KeyValue::new("url.scheme", "http"));
        let host = req.uri.authority().map(|a| a.as_str()).or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        });
        if let Some(authority) = host.and_then(|h| h.parse::<http::uri::Authority>().ok()) {
            span.set_attribute(KeyValue::new(
                "server.address",
                authority.host().to_string(),
            ));
            if let Some(port) = authority.port_u16() {
                span.set_attribute(KeyValue::new("server.port", i64::from(port)));
            }
        }
        span.set_attribute(KeyValue::new(
            "network.protocol.version",
            match req.version {
                http::Version::HTTP_09 => "0.9",
                http::Version::HTTP_10 => "1.0",
                http::Version::HTTP_2 => "2",
                http::Version::HTTP_3 => "3",
                _ => "1.1",
            },
        ));
        if let Some(client) = self.client {
            span.set_attribute(KeyValue::new("client.address", client.ip.to_string()));
            if let Some(port) = client.port {
                span.set_attribute(KeyValue::new("client.port", i64::from(port)));
            }
        }
        if let Some(ua) = req
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            span.set_attribute(KeyValue::new("user_agent.original", ua.to_string()));
        }
        if let Some(up) = self.upstream {
            span.set_attribute(KeyValue::new("network.peer.address", up.ip().to_string()));
            span.set_attribute(KeyValue::new("network.peer.port", i64::from(up.port())));
        }
        let status = session.response_written().map(|r| r.status.as_u16());
        if let Some(code) = status {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
        }
        match (error, status) {
            (Some(e), _) => {
                span.set_attribute(KeyValue::new("error.type", e.etype().as_str()));
                span.set_status(Status::error(e.to_string()));
            }
            (None, Some(code)) if code >= 500 => {
                span.set_attribute(KeyValue::new("error.type", code.to_string()));
                span.set_status(Status::error(""));
            }
            _ => {}
        }
        span.end();
    }
}

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
