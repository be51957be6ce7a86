//! Requests in flight, draining at handover, and the early exit once drained.

use async_trait::async_trait;
use log::{info, warn};
use pingora::server::{ExecutionPhase, ShutdownWatch};
use pingora::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

type ExitHook = Box<dyn Fn() + Send + Sync>;

/// Shared by the proxy (counts requests, closes connections when draining), the reload service
/// (stops applying changes once the process hands over) and the drain service.
#[derive(Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    /// The listening sockets went to a new process (SIGQUIT): its scrapes are the ones to
    /// read, this one's counters are handed on.
    handed_over: AtomicBool,
    in_flight: AtomicUsize,
    /// Requests answered by this process, and how many of them failed (5xx or broken off):
    /// what the old process judges a new one by during an upgrade's watch (`/readyz`).
    answered: AtomicU64,
    failed: AtomicU64,
    exit_hooks: Mutex<Vec<ExitHook>>,
    /// Set once the hooks ran: the second way out waits for the first and runs nothing again.
    exited: Mutex<bool>,
}

impl Lifecycle {
    pub fn new() -> Arc<Lifecycle> {
        Arc::new(Lifecycle::default())
    }

    /// Whether this process is handing over or stopping: responses close their connection and
    /// routing changes are left to the new process.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        if !self.draining.swap(true, Ordering::Relaxed) {
            info!("draining: responses now close their connections");
        }
    }

    /// From SIGQUIT on: the new process serves the scrapes.
    pub fn hand_over(&self) {
        self.handed_over.store(true, Ordering::Relaxed);
    }

    pub fn is_handed_over(&self) -> bool {
        self.handed_over.load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request until the returned guard is dropped (with the request's context).
    pub fn track(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Counts a finished request (`failed`: a 5xx, or an answer broken off).
    pub fn answered(&self, failed: bool) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (requests answered, of which failed) since the process started.
    pub fn answers(&self) -> (u64, u64) {
        (
            self.answered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Registers work to do before the process exits, in order (flush logs, export spans; the
    /// end of an upgrade's watch).
    pub fn on_exit(&self, hook: ExitHook) {
        match self.exit_hooks.lock() {
            Ok(mut h) => h.push(hook),
            Err(p) => p.into_inner().push(hook),
        }
    }

    /// Runs the exit hooks once, whichever way the process leaves (early once drained, or at
    /// the end of Pingora's shutdown): a second caller waits until the first is done.
    pub fn before_exit(&self) {
        let mut exited = self.exited.lock().unwrap_or_else(|p| p.into_inner());
        if *exited {
            return;
        }
        let hooks = match self.exit_hooks.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        for h in hooks.iter() {
            h();
        }
        *exited = true;
    }
}

/// A request in flight; dropping it ends the count.
pub struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Watches Pingora's execution phases and shutdown, and ends the process once drained.
pub struct DrainService {
    lifecycle: Arc<Lifecycle>,
    phases: Mutex<Option<broadcast::Receiver<ExecutionPhase>>>,
    grace: Duration,
}

impl DrainService {
    pub fn new(
        lifecycle: Arc<Lifecycle>,
        phases: broadcast::Receiver<ExecutionPhase>,
        grace: Duration,
    ) -> Self {
        DrainService {
            lifecycle,
            phases: Mutex::new(Some(phases)),
            grace,
        }
    }
}

/// After shutdown is broadcast, connections Pingora accepted just before may still be reading
/// their first request header (not yet counted); give them this long to show up.
const SETTLE: Duration = Duration::from_millis(300);
const POLL: Duration = Duration::from_millis(20);

#[async_trait]
impl BackgroundService for DrainService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let phases = match self.phases.lock() {
            Ok(mut p) => p.take(),
            Err(p) => p.into_inner().take(),
        };
        let Some(mut phases) = phases else { return };
        // Phase 1: running, until the handover or stop starts.
        loop {
            tokio::select! {
                phase = phases.recv() => match phase {
                    Ok(ExecutionPhase::GracefulUpgradeTransferringFds)
                    | Ok(ExecutionPhase::GracefulUpgradeCloseTimeout) => {
                        info!("upgrade: listening sockets handed over to the new process");
                        self.lifecycle.start_draining();
                    }
                    Ok(ExecutionPhase::GracefulTerminate) => self.lifecycle.start_draining(),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        // Phase 2: listeners are closed; wait for the requests in flight, up to the grace period.
        self.lifecycle.start_draining();
        let started = Instant::now();
        tokio::time::sleep(SETTLE).await;
        loop {
            let left = self.lifecycle.in_flight();
            if left == 0 {
                info!(
                    "drained: no request in flight {:?} after shutdown; exiting",
                    started.elapsed()
                );
                break;
            }
            if started.elapsed() >= self.grace {
                warn!(
                    "grace period of {:?} over with {left} request(s) in flight; exiting",
                    self.grace
                );
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        self.lifecycle.before_exit();
        std::process::exit(0);
    }
}
