//! Steady traffic that remembers every answer: a few clients on keep-alive connections send a
//! request every `every`, and each answer is kept with its time, status and upstream, so a test
//! can read the realised split of any interval (a rollout step, the time after an abort).
//!
//! ```text
//! use dyegate_suite::traffic::Traffic;
//! let t = Traffic::start(addr, 2, std::time::Duration::from_millis(5), vec![]);
//! // ...
//! let share = t.share_of("canary", t.samples());
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::{Conn, Req};

/// One answer.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub status: u16,
    /// `x-upstream`, or empty.
    pub upstream: String,
    /// From sending the request to its answer (on a connection already open, or a new one).
    pub took: Duration,
}

pub struct Traffic {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    /// Starts `clients` clients, each sending `GET /` with `headers` every `every`.
    pub fn start(
        addr: SocketAddr,
        clients: usize,
        every: Duration,
        headers: Vec<(String, String)>,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|_| {
                let (stop, samples, headers) = (stop.clone(), samples.clone(), headers.clone());
                tokio::spawn(async move {
                    let mut conn: Option<Conn> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let c = match conn.take() {
                            Some(c) => c,
                            None => Conn::http1(addr).await,
                        };
                        let mut req = Req::get("/");
                        for (k, v) in &headers {
                            req = req.header(k, v);
                        }
                        let mut c = c;
                        match c.try_send(req).await {
                            Ok(resp) => {
                                lock(&samples).push(Sample {
                                    at: Instant::now(),
                                    took: started.elapsed(),
                                    status: resp.status.as_u16(),
                                    upstream: resp.upstream().unwrap_or_default().to_string(),
                                });
                                conn = Some(c);
                            }
                            Err(_) => conn = None,
                        }
                        if let Some(rest) = every.checked_sub(started.elapsed()) {
                            // time is tested: steady traffic, one request per `every` per client, is the load the rollout is judged on.
                            tokio::time::sleep(rest).await;
                        }
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            samples,
            tasks,
        }
    }

    /// Every answer so far.
    pub fn samples(&self) -> Vec<Sample> {
        lock(&self.samples).clone()
    }

    /// The answers in `from..to`.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<Sample> {
        (self.samples().into_iter())
            .filter(|s| s.at >= from && s.at < to)
            .collect()
    }

    /// The share (0 to 1) of `samples` that `upstream` answered.
    pub fn share_of(&self, upstream: &str, samples: &[Sample]) -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        samples.iter().filter(|s| s.upstream == upstream).count() as f64 / samples.len() as f64
    }

    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        lock(&self.samples).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
