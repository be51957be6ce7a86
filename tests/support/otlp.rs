//! OTLP collectors on loopback for the trace tests: one speaking OTLP/gRPC (the collector's
//! `TraceService`, served by tonic's generated server over hyper) and one speaking OTLP/HTTP
//! with protobuf bodies (`POST /v1/traces`). Both record every span they receive, or hang on
//! every export to play a stuck collector.
//!
//! ```no_run
//! use dyegate_suite::OtlpReceiver;
//! use std::time::Duration;
//! let collector = OtlpReceiver::grpc();
//! // gateway.yaml: tracing: { endpoint: "<collector.endpoint()>" }
//! let spans = collector.wait_for_spans(1, Duration::from_secs(5));
//! assert_eq!(spans[0].name, "GET");
//! ```

use crate::server_thread::{accept_each, ServerThread};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::wait::wait_until;

/// The wire protocol a receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    Http,
}

impl OtlpProtocol {
    /// The `tracing.protocol` value in gateway.yaml.
    pub fn yaml(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::Http => "http",
        }
    }
}

/// One received span with the resource and scope it came with.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub span: Span,
    pub resource: Vec<KeyValue>,
    pub scope_name: String,
    pub scope_version: String,
}

impl std::ops::Deref for ReceivedSpan {
    type Target = Span;
    fn deref(&self) -> &Span {
        &self.span
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value_text(kvs: &[KeyValue], key: &str) -> Option<String> {
    let v = kvs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

impl ReceivedSpan {
    pub fn trace_id_hex(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span.span_id)
    }

    /// Empty for a root span.
    pub fn parent_span_id_hex(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// A span attribute as text (ints and bools formatted), `None` when absent.
    pub fn attr(&self, key: &str) -> Option<String> {
        value_text(&self.span.attributes, key)
    }

    /// A resource attribute as text.
    pub fn resource_attr(&self, key: &str) -> Option<String> {
        value_text(&self.resource, key)
    }

    /// The status code: 0 unset, 1 ok, 2 error.
    pub fn status_code(&self) -> i32 {
        self.span.status.as_ref().map_or(0, |s| s.code)
    }

    /// Names of the span's events, in order.
    pub fn event_names(&self) -> Vec<String> {
        self.span.events.iter().map(|e| e.name.clone()).collect()
    }
}

#[derive(Default)]
struct Received {
    /// Keep every span (tests) or only count them (the load bench's sink).
    keep: bool,
    spans: Mutex<Vec<ReceivedSpan>>,
    span_count: AtomicUsize,
    exports: AtomicUsize,
}

impl Received {
    fn record(&self, req: ExportTraceServiceRequest) {
        self.exports.fetch_add(1, Ordering::SeqCst);
        let n: usize = req
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        self.span_count.fetch_add(n, Ordering::SeqCst);
        if !self.keep {
            return;
        }
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        for rs in req.resource_spans {
            let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
            for ss in rs.scope_spans {
                let (scope_name, scope_version) =
                    ss.scope.map(|s| (s.name, s.version)).unwrap_or_default();
                for span in ss.spans {
                    spans.push(ReceivedSpan {
                        span,
                        resource: resource.clone(),
                        scope_name: scope_name.clone(),
                        scope_version: scope_version.clone(),
                    });
                }
            }
        }
    }
}

#[derive(Clone)]
struct GrpcCollector {
    received: Arc<Received>,
    hang: bool,
}

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if self.hang {
            self.received.exports.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        self.received.record(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A running collector; dropping it stops the server and closes its connections.
pub struct OtlpReceiver {
    protocol: OtlpProtocol,
    addr: SocketAddr,
    received: Arc<Received>,
    _thread: ServerThread,
}

impl OtlpReceiver {
    /// An OTLP/gRPC collector that accepts every export.
    pub fn grpc() -> Self {
        Self::start(OtlpProtocol::Grpc, false)
    }

    /// An OTLP/HTTP (protobuf) collector that accepts every export.
    pub fn http() -> Self {
        Self::start(OtlpProtocol::Http, false)
    }

    /// A collector that accepts connections and requests but never answers an export.
    pub fn hanging(protocol: OtlpProtocol) -> Self {
        Self::start(protocol, true)
    }

    /// Starts a collector on a fresh loopback port; it accepts connections when this returns.
    pub fn start(protocol: OtlpProtocol, hang: bool) -> Self {
        Self::spawn(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            protocol,
            hang,
            true,
        )
        .expect("starting a collector on 127.0.0.1:0")
    }

    /// A collector on `addr` that only counts spans (memory stays flat under load).
    pub fn sink(addr: SocketAddr, protocol: OtlpProtocol) -> std::io::Result<Self> {
        Self::spawn(addr, protocol, false, false)
    }

    fn spawn(
        addr: SocketAddr,
        protocol: OtlpProtocol,
        hang: bool,
        keep: bool,
    ) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Received {
            keep,
            ..Received::default()
        });
        let thread = {
            let received = Arc::clone(&received);
            let name = format!("otlp-{}", protocol.yaml());
            // Dropping the runtime cancels every connection task, hung exports too.
            ServerThread::start(name, listener, move |listener| {
                accept_each(listener, move |stream| {
                    let received = Arc::clone(&received);
                    tokio::spawn(serve_connection(stream, protocol, received, hang));
                })
            })?
        };
        Ok(OtlpReceiver {
            protocol,
            addr,
            received,
            _thread: thread,
        })
    }

    pub fn protocol(&self) -> OtlpProtocol {
        self.protocol
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, as written in `tracing.endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `tracing:` section of gateway.yaml that exports to this collector, plus `extra`
    /// fields (e.g. `sample_ratio: 0.5`).
    pub fn tracing_yaml(&self, extra: &str) -> String {
        let sep = if extra.is_empty() { "" } else { ", " };
        format!(
            "tracing: {{ endpoint: \"{}\", protocol: {}{sep}{extra} }}\n",
            self.endpoint(),
            self.protocol.yaml()
        )
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received
            .spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Spans received so far (also counted when they are not kept).
    pub fn span_count(&self) -> usize {
        self.received.span_count.load(Ordering::SeqCst)
    }

    /// Export requests received so far (hung ones included).
    pub fn exports(&self) -> usize {
        self.received.exports.load(Ordering::SeqCst)
    }

    /// Polls until at least `n` spans have arrived; panics with what did arrive otherwise.
    pub fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        let arrived = wait_until(timeout, || self.spans().len() >= n);
        let spans = self.spans();
        assert!(
            arrived,
            "expected {n} spans within {timeout:?}, got {}: {:#?}",
            spans.len(),
            spans.iter().map(|s| &s.span).collect::<Vec<_>>()
        );
        spans
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    protocol: OtlpProtocol,
    received: Arc<Received>,
    hang: bool,
) {
    let io = TokioIo::new(stream);
    let builder = auto::Builder::new(TokioExecutor::new());
    match protocol {
        OtlpProtocol::Grpc => {
            let service = TraceServiceServer::new(GrpcCollector { received, hang });
            let _ = builder
                .http2_only()
                .serve_connection(io, TowerToHyperService::new(service))
                .await;
        }
        OtlpProtocol::Http => {
            let service = hyper::service::service_fn(move |req| {
                let received = Arc::clone(&received);
                async move { Ok::<_, Infallible>(http_export(req, &received, hang).await) }
            });
            let _ = builder.serve_connection(io, service).await;
        }
    }
}

/// `POST /v1/traces` with an `ExportTraceServiceRequest` protobuf body.
async fn http_export(
    req: http::Request<Incoming>,
    received: &Received,
    hang: bool,
) -> http::Response<Full<Bytes>> {
    let reply = |status: u16, body: Bytes| {
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(body))
            .unwrap_or_default()
    };
    if req.method() != http::Method::POST || req.uri().path() != "/v1/traces" {
        return reply(404, Bytes::new());
    }
    if hang {
        received.exports.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(400, Bytes::new()),
    };
    match ExportTraceServiceRequest::decode(body) {
        Ok(export) => {
            received.record(export);
            let resp = ExportTraceServiceResponse {
                partial_success: None,
            };
            reply(200, Bytes::from(resp.encode_to_vec()))
        }
        Err(_) => reply(400, Bytes::new()),
    }
}
