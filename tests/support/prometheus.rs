//! A real Prometheus (Debian's `prometheus` package) for the rollout's Prometheus gates: one
//! server on a free loopback port with a temp data dir, scraping every 200 ms an [`Exporter`]
//! whose one gauge the test sets; killed on drop.

use crate::ports::free_addr;
use crate::server_thread::{accept_each, ServerThread};
use crate::wait::wait_until;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// How long Prometheus may take to answer after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET /metrics`: `checkout_errors{version="canary"} VALUE`, VALUE as set.
pub struct Exporter {
    addr: SocketAddr,
    value: Arc<AtomicU64>,
    _thread: ServerThread,
}

impl Exporter {
    pub fn start(value: f64) -> Exporter {
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("exporter on 127.0.0.1:0");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(AtomicU64::new(value.to_bits()));
        let v = shared.clone();
        let thread = ServerThread::start("exporter".into(), listener, move |listener| {
            accept_each(listener, move |stream| {
                let v = v.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let value = f64::from_bits(v.load(Ordering::SeqCst));
                        let body = format!(
                            "# TYPE checkout_errors gauge\ncheckout_errors{{version=\"canary\"}} {value}\n"
                        );
                        async move {
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .header("content-type", "text/plain; version=0.0.4")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap_or_default(),
                            )
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            })
        })
        .expect("exporter thread");
        Exporter {
            addr,
            value: shared,
            _thread: thread,
        }
    }

    pub fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::SeqCst);
    }
}

pub struct Prometheus {
    dir: TempDir,
    addr: SocketAddr,
    child: Option<Child>,
}

impl Prometheus {
    /// Starts a server scraping `exporter` and waits until it has a sample of it.
    pub fn start(exporter: &Exporter) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("dyegate-prometheus-")
            .tempdir()
            .expect("creating Prometheus's data dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 200ms, scrape_timeout: 200ms, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: shop\n    static_configs: [{{ targets: [\"{}\"] }}]\n",
                exporter.addr
            ),
        )
        .expect("writing prometheus.yml");
        let addr = free_addr();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning prometheus (apt-get install prometheus): {e}"));
        let p = Prometheus {
            dir,
            addr,
            child: Some(child),
        };
        let up = wait_until(START_TIMEOUT, || {
            TcpStream::connect_timeout(&p.addr, Duration::from_millis(200)).is_ok()
                && p.value("max(checkout_errors)").is_some()
        });
        assert!(
            up,
            "prometheus has no sample within {START_TIMEOUT:?}\n{}",
            p.log()
        );
        p
    }

    /// `http://127.0.0.1:PORT`, as a gate's `url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The value of an instant query, as the server answers it now (one sample), by curl.
    pub fn value(&self, query: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "2", "--get", "--data-urlencode"])
            .arg(format!("query={query}"))
            .arg(format!("{}/api/v1/query", self.url()))
            .output()
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
