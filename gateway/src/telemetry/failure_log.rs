//! Upstream failures in the log, bounded: the first failure of a target in a window of
//! [`WINDOW`] is logged in full; the next ones in that window are only counted (the metrics count
//! every one: `dyegate_upstream_errors_total`), and summed up in one line when the window ends,
//! so a dead upstream under heavy traffic logs a few lines every few seconds, not one per request.
//! The decisions take the time as an argument: tested without waiting.

use async_trait::async_trait;
use log::warn;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one target's failures are summed up before the next full line.
pub const WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct FailureLog {
    windows: Mutex<HashMap<SocketAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    /// Failures seen in the window and not logged one by one.
    suppressed: u64,
}

/// What to do with one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it in full; `summary` first when the previous window ended with failures not logged.
    Log { summary: Option<Summary> },
    /// Count it only.
    Suppress,
}

/// Failures of one target that were not logged one by one, over `over`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub target: SocketAddr,
    pub suppressed: u64,
    pub over: Duration,
}

impl Summary {
    pub fn line(&self) -> String {
        format!(
            "upstream {}: {} more failure(s) in the last {:.1} s, not logged one by one (dyegate_upstream_errors_total counts every one)",
            self.target,
            self.suppressed,
            self.over.as_secs_f64()
        )
    }
}

impl FailureLog {
    /// A failure of `target` at `now`.
    pub fn failure(&self, target: SocketAddr, now: Instant) -> Verdict {
        let mut windows = self.lock();
        match windows.get_mut(&target) {
            Some(w) if now.saturating_duration_since(w.started) < WINDOW => {
                w.suppressed += 1;
                Verdict::Suppress
            }
            previous => {
                let summary = previous.and_then(|w| ended(target, w, now));
                windows.insert(
                    target,
                    Window {
                        started: now,
                        suppressed: 0,
                    },
                );
                Verdict::Log { summary }
            }
        }
    }

    /// The windows that ended by `now`: their summaries (those with failures not logged), and
    /// the windows are forgotten (the next failure of their target is logged in full).
    pub fn flush(&self, now: Instant) -> Vec<Summary> {
        let mut out = Vec::new();
        self.lock().retain(|target, w| {
            if now.saturating_duration_since(w.started) < WINDOW {
                return true;
            }
            out.extend(ended(*target, w, now));
            false
        });
        out.sort_by_key(|s| s.target);
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Logs the summaries of the windows that ended, once a second.
pub struct FailureLogFlush(pub Arc<FailureLog>);

#[async_trait]
impl BackgroundService for FailureLogFlush {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            for s in self.0.flush(Instant::now()) {
                warn!("{}", s.line());
            }
        }
    }
}

fn ended(target: SocketAddr, w: &Window, now: Instant) -> Option<Summary> {
    (w.suppressed > 0).then(|| Summary {
        target,
        suppressed: w.suppressed,
        over: now.saturating_duration_since(w.started),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_of_a_window_is_logged_the_rest_summed_up_once() {
        let log = FailureLog::default();
        let a: SocketAddr = ([127, 0, 0, 1], 9001).into();
        let b: SocketAddr = ([127, 0, 0, 1], 9002).into();
        let t0 = Instant::now();
        assert_eq!(log.failure(a, t0), Verdict::Log { summary: None });
        for ms in 1..=1000 {
            assert_eq!(
                log.failure(a, t0 + Duration::from_millis(ms)),
                Verdict::Suppress
            );
        }
        // Another target has its own window.
        assert_eq!(
            log.failure(b, t0 + Duration::from_millis(10)),
            Verdict::Log { summary: None }
        );
        // Nothing ended yet.
        assert_eq!(log.flush(t0 + Duration::from_millis(4999)), vec![]);
        // The next failure after the window: the summary, then the failure in full.
        let t1 = t0 + WINDOW;
        assert_eq!(
            log.failure(a, t1),
            Verdict::Log {
                summary: Some(Summary {
                    target: a,
                    suppressed: 1000,
                    over: WINDOW
                })
            }
        );
        // Without more failures, the flush sums up what was left; a window with nothing
        // suppressed says nothing; both are forgotten.
        log.failure(a, t1 + Duration::from_millis(1));
        let t2 = t1 + WINDOW + Duration::from_millis(500);
        let flushed = log.flush(t2);
        assert_eq!(
            flushed,
            vec![Summary {
                target: a,
                suppressed: 1,
                over: WINDOW + Duration::from_millis(500)
            }]
        );
        assert!(flushed[0]
            .line()
            .starts_with("upstream 127.0.0.1:9001: 1 more failure(s) in the last 5.5 s"));
        assert_eq!(log.flush(t2), vec![]);
        assert_eq!(log.failure(b, t2), Verdict::Log { summary: None });
    }
}
