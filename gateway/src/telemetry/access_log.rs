//! The JSON access log: one line per request, written by its own thread through a bounded queue,
//! so a slow disk never stalls a request (when the queue is full the line is dropped and
//! counted). SIGUSR1 reopens the file, for logrotate. A SIGHUP that changes gateway.yaml
//! `access_log` turns it on or off or moves it ([`AccessLog::switch`]): the switch travels
//! through the same queue, so every line queued before it is written to the old file, which is
//! flushed and closed before the first line goes to the new one. The queue and its thread are
//! there for the process's whole life, the log on or off.

use crate::config::settings::process::AccessLogSettings;
use async_trait::async_trait;
use log::{info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Write to this destination from now on (`None`: off), with its writer already open.
    /// Boxed: every slot of the queue is the size of its largest message.
    Switch(Box<(Option<Destination>, Option<Writer>)>),
}

type Writer = Box<dyn Write + Send>;

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl Destination {
    /// gateway.yaml's `access_log` as the settings give it (`None`: off, `Some(None)`: stdout).
    pub fn of(setting: &Option<AccessLogSettings>) -> Option<Destination> {
        setting.as_ref().map(|a| match &a.path {
            None => Destination::Stdout,
            Some(p) => Destination::File(p.clone()),
        })
    }
}

/// How long [`AccessLog::switch`] waits for room in a full queue.
const SWITCH_WAIT: Duration = Duration::from_secs(2);

/// The request side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    /// Whether requests are logged: checked before a record is built.
    on: Arc<AtomicBool>,
    capacity: usize,
}

impl AccessLog {
    /// A log with a queue of `capacity` lines, and the service that writes it; `None`: off
    /// until [`switch`](Self::switch)ed on.
    pub fn new(destination: Option<Destination>, capacity: usize) -> (AccessLog, AccessLogService) {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        (
            AccessLog {
                tx: tx.clone(),
                dropped: dropped.clone(),
                on: Arc::new(AtomicBool::new(destination.is_some())),
                capacity,
            },
            AccessLogService {
                rx: Mutex::new(Some(rx)),
                tx,
                destination,
                dropped,
            },
        )
    }

    /// Whether requests are logged now.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Lines the queue holds (`access_log.queue` at start).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes to `to` from now on (`None`: off). The new file is opened here, so a path that
    /// cannot be opened changes nothing and says why; the lines queued before are written to
    /// the old destination, which is then flushed and closed. Waits at most a couple of seconds
    /// for room in a full queue.
    pub fn switch(&self, to: Option<Destination>) -> Result<(), String> {
        let out = match &to {
            None => None,
            Some(dest) => Some(try_open(dest).map_err(|e| describe_open(dest, &e))?),
        };
        let on = to.is_some();
        if !on {
            // Off first: no request queues a line after the switch, which would be lost.
            self.on.store(false, Ordering::Relaxed);
        }
        let mut msg = Msg::Switch(Box::new((to, out)));
        let deadline = Instant::now() + SWITCH_WAIT;
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    msg = back;
                    // The writer makes room within milliseconds, unless its disk is stuck.
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => {
                    self.on.store(!on, Ordering::Relaxed);
                    return Err(format!(
                        "the access log's writer has not made room in its queue within {} s: not switched",
                        SWITCH_WAIT.as_secs()
                    ));
                }
            }
        }
        // On last: the first line queued after the switch goes to the new destination.
        self.on.store(on, Ordering::Relaxed);
        Ok(())
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
    destination: Option<Destination>,
    /// Shared with [`AccessLog`]: lines the writer could not write count as dropped too.
    dropped: Arc<AtomicU64>,
}

/// The destination, opened for appending (its directory made when missing).
fn try_open(dest: &Destination) -> std::io::Result<Writer> {
    Ok(match dest {
        Destination::Stdout => Box::new(BufWriter::with_capacity(64 * 1024, std::io::stdout())),
        Destination::File(p) => {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let f = OpenOptions::new().create(true).append(true).open(p)?;
            Box::new(BufWriter::with_capacity(64 * 1024, f))
        }
    })
}

fn describe_open(dest: &Destination, e: &std::io::Error) -> String {
    match dest {
        Destination::Stdout => format!("cannot write to stdout: {e}"),
        Destination::File(p) => format!("cannot open {}: {e}", p.display()),
    }
}

/// The destination, opened; `None` when the file cannot be opened (until a reopen succeeds,
/// every line is counted as dropped).
fn open(dest: &Destination) -> Option<Writer> {
    try_open(dest)
        .map_err(|e| {
            warn!(
                "access log: {}; lines are dropped (and counted) until SIGUSR1 reopens it",
                describe_open(dest, &e)
            )
        })
        .ok()
}

fn writer(rx: Receiver<Msg>, mut dest: Option<Destination>, dropped: Arc<AtomicU64>) {
    let mut out = dest.as_ref().and_then(open);
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
            // Off: a line of a request that finished as the log was turned off.
            Msg::Record(_) if dest.is_none() => {}
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
                let Some(d) = &dest else { continue };
                flush(&mut out);
                out = open(d);
                failing = false;
                info!("access log reopened");
            }
            Msg::Switch(to) => {
                flush(&mut out);
                (dest, out) = *to;
                failing = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> AccessRecord {
        AccessRecord {
            time: "2024-01-01T00:00:00Z".into(),
            client: None,
            method: "GET".into(),
            host: "example.com".into(),
            path: path.into(),
            status: 200,
            broken: false,
            duration_ms: 1.0,
            bytes_in: 0,
            bytes_out: 0,
            route: None,
            upstream_group: None,
            target: None,
            tag: None,
            decision: None,
            routing_version: 1,
            trace_id: None,
            grpc_status: None,
        }
    }

    /// The paths of the lines in `file` (none when it does not exist).
    fn paths(file: &std::path::Path) -> Vec<String> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        (text.lines())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                v["path"].as_str().expect("path").to_string()
            })
            .collect()
    }

    /// A log to `dest` with its writer running on a thread of its own.
    fn started(dest: Option<Destination>) -> (AccessLog, std::thread::JoinHandle<()>) {
        let (log, service) = AccessLog::new(dest.clone(), 16);
        let rx = (service.rx.lock().ok())
            .and_then(|mut r| r.take())
            .expect("receiver");
        let dropped = log.dropped();
        let thread = std::thread::spawn(move || writer(rx, dest, dropped));
        (log, thread)
    }

    #[test]
    fn a_switch_writes_what_was_queued_to_the_old_file_then_moves_on() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("a.log"), dir.path().join("sub/b.log"));
        let (log, thread) = started(Some(Destination::File(a.clone())));
        assert!(log.is_on());
        log.log(record("/1"));
        log.log(record("/2"));
        assert_eq!(log.switch(Some(Destination::File(b.clone()))), Ok(()));
        log.log(record("/3"));
        log.flush(Duration::from_secs(10));
        assert_eq!(paths(&a), ["/1", "/2"]);
        assert_eq!(paths(&b), ["/3"], "the new file's directory is made");

        // A path that cannot be opened changes nothing, and says why.
        let blocked = a.join("x.log");
        let refused = log.switch(Some(Destination::File(blocked.clone())));
        let why = refused.expect_err("a file under a file");
        assert!(
            why.starts_with(&format!("cannot open {}: ", blocked.display())),
            "{why}"
        );
        assert!(log.is_on());
        log.log(record("/4"));

        assert_eq!(log.switch(None), Ok(()));
        assert!(!log.is_on());
        // A line of a request that saw the log on just before: not written, not dropped.
        log.log(record("/late"));
        log.flush(Duration::from_secs(10));
        assert_eq!(paths(&b), ["/3", "/4"]);
        assert_eq!(log.dropped().load(Ordering::Relaxed), 0);

        // On again, at the first file: appended.
        assert_eq!(log.switch(Some(Destination::File(a.clone()))), Ok(()));
        assert!(log.is_on());
        log.log(record("/5"));
        log.flush(Duration::from_secs(10));
        assert_eq!(paths(&a), ["/1", "/2", "/5"]);
        drop(log);
        thread.join().expect("the writer ends with the last sender");
    }

    #[test]
    fn a_log_off_at_start_writes_nothing_until_switched_on() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = dir.path().join("a.log");
        let (log, _thread) = started(None);
        assert!(!log.is_on());
        assert_eq!(log.capacity(), 16);
        log.log(record("/off"));
        log.flush(Duration::from_secs(10));
        assert!(!a.exists());
        assert_eq!(log.switch(Some(Destination::File(a.clone()))), Ok(()));
        log.log(record("/on"));
        log.flush(Duration::from_secs(10));
        assert_eq!(paths(&a), ["/on"]);
    }
}
