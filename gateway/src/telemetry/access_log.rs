//! The JSON access log: one line per request, written by its own thread through a bounded queue,
//! so a slow disk never stalls a request (when the queue is full the line is dropped and
//! counted). SIGUSR1 reopens the file, for logrotate.

use async_trait::async_trait;
use log::{info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request, as logged.
#[derive(Debug, Clone, Serialize)]
pub struct AccessRecord {
    pub time: String,
    pub client: Option<String>,
    pub method: String,
    pub host: String,
    pub path: String,
    pub status: u16,
    /// The answer broke off after its head (counted with `status_class="error"`); written only
    /// when true.
    #[serde(skip_serializing_if = "is_false")]
    pub broken: bool,
    pub duration_ms: f64,
    pub bytes_in: usize,
    pub bytes_out: usize,
    pub route: Option<String>,
    pub upstream_group: Option<String>,
    pub target: Option<String>,
    pub tag: Option<String>,
    pub decision: Option<&'static str>,
    pub routing_version: u64,
    pub trace_id: Option<String>,
    /// The upstream's `grpc-status` (`0`..`16`, `other`, `none`); only for groups spoken to
    /// over HTTP/2, absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<&'static str>,
}

fn is_false(b: &bool) -> bool {
    !b
}

enum Msg {
    Record(Box<AccessRecord>),
    Reopen,
    Flush(SyncSender<()>),
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

/// The request side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// A log with a queue of `capacity` lines, and the service that writes it.
    pub fn new(destination: Destination, capacity: usize) -> (AccessLog, AccessLogService) {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        (
            AccessLog {
                tx: tx.clone(),
                dropped: dropped.clone(),
            },
            AccessLogService {
                rx: Mutex::new(Some(rx)),
                tx,
                destination,
                dropped,
            },
        )
    }

    /// Queues a line; drops and counts it when the writer is behind.
    pub fn log(&self, record: AccessRecord) {
        match self.tx.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// Waits (up to `timeout`) until every queued line is written and flushed.
    pub fn flush(&self, timeout: Duration) {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(timeout);
        }
    }
}

/// Owns the writer thread (started after Pingora's daemonizing fork) and SIGUSR1.
pub struct AccessLogService {
    rx: Mutex<Option<Receiver<Msg>>>,
    tx: SyncSender<Msg>,
    destination: Destination,
    /// Shared with [`AccessLog`]: lines the writer could not write count as dropped too.
    dropped: Arc<AtomicU64>,
}

/// The destination, opened; `None` when the file cannot be opened (until a reopen succeeds,
/// every line is counted as dropped).
fn open(dest: &Destination) -> Option<Box<dyn Write + Send>> {
    match dest {
        Destination::Stdout => Some(Box::new(BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ))),
        Destination::File(p) => {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match OpenOptions::new().create(true).append(true).open(p) {
                Ok(f) => Some(Box::new(BufWriter::with_capacity(64 * 1024, f))),
                Err(e) => {
                    warn!(
                        "access log: cannot open {}: {e}; lines are dropped (and counted) until \
                         SIGUSR1 reopens it",
                        p.display()
                    );
                    None
                }
            }
        }
    }
}

fn writer(rx: Receiver<Msg>, dest: Destination, dropped: Arc<AtomicU64>) {
    let mut out = open(&dest);
    let mut line = Vec::with_capacity(512);
    // Whether the last write failed: a failing disk is said once, not once per line.
    let mut failing = false;
    let flush = |out: &mut Option<Box<dyn Write + Send>>| {
        if let Some(o) = out {
            let _ = o.flush();
        }
    };
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                flush(&mut out);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Msg::Record(r) => {
                line.clear();
                let written = match out.as_mut() {
                    Some(o) if serde_json::to_writer(&mut line, &r).is_ok() => {
                        line.push(b'\n');
                        match o.write_all(&line) {
                            Ok(()) => true,
                            Err(e) => {
                                if !failing {
                                    warn!("access log: write failed: {e}; lines are dropped");
                                }
                                false
                            }
                        }
                    }
                    _ => false,
                };
                failing = !written;
                if !written {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Msg::Reopen => {
                flush(&mut out);
                out = open(&dest);
                failing = false;
                info!("access log reopened");
            }
            Msg::Flush(done) => {
                flush(&mut out);
                let _ = done.try_send(());
            }
        }
    }
    flush(&mut out);
}

#[async_trait]
impl BackgroundService for AccessLogService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let rx = match self.rx.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let Some(rx) = rx else { return };
        let dest = self.destination.clone();
        let dropped = self.dropped.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(rx, dest, dropped))
        {
            warn!("access log: cannot start writer thread: {e}");
            return;
        }
        let mut usr1 =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()) {
                Ok(s) => s,
                Err(e) => {
                    warn!("access log: cannot handle SIGUSR1: {e}");
                    return;
                }
            };
        loop {
            tokio::select! {
                _ = usr1.recv() => { let _ = self.tx.send(Msg::Reopen); }
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
            }
        }
    }
}
