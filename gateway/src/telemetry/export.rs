//! Span export off the request path. A finished span goes through the SDK's span-processor hook
//! into a bounded queue ([`QueueProcessor`], a `try_send` that never waits); a Pingora background
//! service ([`ExportService`]) drains the queue in batches to the OTLP exporter. When the queue is
//! full, or an export fails or times out, the spans are dropped and counted in [`ExportStats`].
//!
//! Not the SDK's `BatchSpanProcessor`: it keeps its drop count to itself, and it starts its worker
//! thread when built, before Pingora may fork into a daemon (threads do not survive a fork). The
//! exporter and its connections are created in the background service, after any fork, on the
//! runtime Pingora gives that service.

use crate::config::settings::model::OtlpProtocol;
use crate::config::ExportSettings;
use async_trait::async_trait;
use log::{info, warn};
use opentelemetry::Context;
use opentelemetry_otlp::{
    Protocol, RetryPolicy, SpanExporter as OtlpExporter, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Most spans sent in one export request (never more than the queue holds).
pub const MAX_BATCH: usize = 512;
/// How long the first span of a batch waits for company before the batch is sent.
pub const BATCH_LINGER: Duration = Duration::from_millis(200);
/// How often the counters are logged while they change.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Counters of the export pipeline, shared with whoever reports them (log line, `/metrics`).
#[derive(Debug, Default)]
pub struct ExportStats {
    exported: AtomicU64,
    /// Every dropped span, whatever the cause (shared with the metrics registry).
    dropped: Arc<AtomicU64>,
    /// The part of `dropped` whose export failed or timed out (the rest found the queue full).
    dropped_export_failed: AtomicU64,
}

impl ExportStats {
    /// Spans the collector accepted.
    pub fn spans_exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Spans lost: the queue was full, or their export failed or timed out.
    pub fn spans_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The counter behind [`spans_dropped`](Self::spans_dropped), for `dyegate_spans_dropped_total`.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    fn drop_queue_full(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn drop_export_failed(&self, n: u64) {
        self.dropped_export_failed.fetch_add(n, Ordering::Relaxed);
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    fn line(&self) -> String {
        let dropped = self.spans_dropped();
        let failed = self.dropped_export_failed.load(Ordering::Relaxed);
        format!(
            "spans_exported={} spans_dropped={dropped} (queue full {}, export failed {failed})",
            self.spans_exported(),
            dropped.saturating_sub(failed),
        )
    }
}

/// The request-path end of the queue: the SDK calls `on_end` when a recording span ends.
#[derive(Debug)]
pub struct QueueProcessor {
    tx: mpsc::Sender<SpanData>,
    stats: Arc<ExportStats>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.tx.try_send(span).is_err() {
            self.stats.drop_queue_full();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The background end of the queue: batches spans to the collector.
pub struct ExportService {
    rx: Mutex<Option<mpsc::Receiver<SpanData>>>,
    settings: ExportSettings,
    resource: Resource,
    stats: Arc<ExportStats>,
}

/// A bounded queue between the two ends.
pub fn queue(
    settings: ExportSettings,
    resource: Resource,
    stats: Arc<ExportStats>,
) -> (QueueProcessor, ExportService) {
    let (tx, rx) = mpsc::channel(settings.queue_size.max(1));
    (
        QueueProcessor {
            tx,
            stats: Arc::clone(&stats),
        },
        ExportService {
            rx: Mutex::new(Some(rx)),
            settings,
            resource,
            stats,
        },
    )
}

fn build_exporter(
    s: &ExportSettings,
    resource: &Resource,
) -> Result<OtlpExporter, opentelemetry_otlp::ExporterBuildError> {
    // One attempt per batch: a retry would hold the queue while the collector is down, and the
    // spans of a failed attempt are counted as dropped instead.
    let mut exporter = match s.protocol {
        OtlpProtocol::Grpc => {
            let mut headers = http::HeaderMap::new();
            for (name, value) in &s.headers {
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    http::HeaderValue::from_str(value),
                ) {
                    headers.insert(n, v);
                }
            }
            OtlpExporter::builder()
                .with_tonic()
                .with_endpoint(s.endpoint.clone())
                .with_timeout(s.timeout)
                .with_metadata(
                    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers),
                )
                .with_retry_policy(RetryPolicy::disabled())
                .build()?
        }
        OtlpProtocol::Http => OtlpExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(s.endpoint.clone())
            .with_timeout(s.timeout)
            .with_headers(s.headers.iter().cloned().collect())
            .with_retry_policy(RetryPolicy::disabled())
            .build()?,
    };
    exporter.set_resource(resource);
    Ok(exporter)
}

/// Logs the counters at most every [`REPORT_EVERY`], and only when they changed.
struct Reporter {
    last: Instant,
    last_line: String,
}

impl Reporter {
    fn maybe_log(&mut self, stats: &ExportStats, force: bool) {
        if !force && self.last.elapsed() < REPORT_EVERY {
            return;
        }
        let line = stats.line();
        if line != self.last_line {
            info!("span export: {line}");
            self.last_line = line;
        }
        self.last = Instant::now();
    }
}

impl ExportService {
    async fn export(
        &self,
        exporter: Option<&OtlpExporter>,
        batch: Vec<SpanData>,
        failing: &mut bool,
    ) {
        let n = batch.len() as u64;
        let result = match exporter {
            Some(e) => match tokio::time::timeout(self.settings.timeout, e.export(batch)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(err.to_string()),
                Err(_) => Err(format!("no answer within {:?}", self.settings.timeout)),
            },
            None => Err("no exporter".to_string()),
        };
        match result {
            Ok(()) => {
                self.stats.exported.fetch_add(n, Ordering::Relaxed);
                if *failing {
                    info!("span export to {} works again", self.settings.endpoint);
                    *failing = false;
                }
            }
            Err(why) => {
                self.stats.drop_export_failed(n);
                if !*failing {
                    warn!(
                        "span export to {} failed, dropping spans until it works again: {why}",
                        self.settings.endpoint
                    );
                    *failing = true;
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for ExportService {
    /// Runs for the life of the process: spans keep ending during a graceful shutdown's drain,
    /// so the loop goes on until Pingora drops this service's runtime.
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let rx = self.rx.lock().ok().and_then(|mut rx| rx.take());
        let Some(mut rx) = rx else {
            return;
        };
        let exporter = match build_exporter(&self.settings, &self.resource) {
            Ok(e) => Some(e),
            Err(e) => {
                warn!("span export disabled, every span will be dropped: {e}");
                None
            }
        };
        info!(
            "exporting spans to {} over OTLP/{}",
            self.settings.endpoint,
            match self.settings.protocol {
                OtlpProtocol::Grpc => "gRPC",
                OtlpProtocol::Http => "HTTP",
            }
        );
        let max_batch = self.settings.queue_size.clamp(1, MAX_BATCH);
        let mut batch: Vec<SpanData> = Vec::with_capacity(max_batch);
        let mut reporter = Reporter {
            last: Instant::now(),
            last_line: ExportStats::default().line(),
        };
        let mut tick = tokio::time::interval(REPORT_EVERY);
        let mut failing = false;
        let mut shutting_down = false;
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, max_batch) => {
                    if n == 0 {
                        return; // every sender is gone
                    }
                }
                _ = tick.tick() => {
                    reporter.maybe_log(&self.stats, false);
                    continue;
                }
                _ = shutdown.changed(), if !shutting_down => {
                    shutting_down = true;
                    reporter.maybe_log(&self.stats, true);
                    continue;
                }
            }
            let deadline = tokio::time::Instant::now() + BATCH_LINGER;
            while batch.len() < max_batch {
                let room = max_batch - batch.len();
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let full = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
            self.export(exporter.as_ref(), full, &mut failing).await;
            reporter.maybe_log(&self.stats, false);
        }
    }
}
