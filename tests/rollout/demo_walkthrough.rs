//! The README's automatic-rollback walkthrough with the real `demo-upstream` binary (issue 26):
//! a rollout on its first step, the demo canary told at run time to fail 3 requests in 10
//! (`POST /fail?rate=0.3`), the error-rate gate takes the canary to 0 by itself; told to heal
//! (`rate=0`), it answers again. `--fail-rate` and `--latency-ms` at start do the same.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dyegate_suite::rollout::*;
use dyegate_suite::traffic::Traffic;
use dyegate_suite::{free_addr, Dyegate, Req};
use http::StatusCode;

/// A `demo-upstream` process, killed when dropped.
struct Demo {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Demo {
    async fn start(name: &str, args: &[&str]) -> Demo {
        let addr = free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_demo-upstream"))
            .args(["--listen", &addr.to_string(), "--name", name])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("demo-upstream starts");
        let demo = Demo { child, addr };
        let up = dyegate_suite::wait_until_async(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(addr).await.is_ok()
        })
        .await;
        assert!(up, "demo-upstream {name} listens on {addr}");
        demo
    }

    /// `n` requests straight to it: how many were answered 500.
    async fn failures_of(&self, n: usize) -> usize {
        let mut failed = 0;
        for _ in 0..n {
            let resp = Req::get("/").send(self.addr).await;
            assert_eq!(resp.upstream(), Some("canary"));
            failed += usize::from(resp.status == StatusCode::INTERNAL_SERVER_ERROR);
        }
        failed
    }

    async fn post(&self, path: &str) -> serde_json::Value {
        let resp = Req::post(path).send(self.addr).await;
        assert_eq!(resp.status, StatusCode::OK, "{path}: {}", resp.text());
        serde_json::from_str(&resp.text()).expect("JSON settings")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn routes(stable: &Demo, canary: &Demo) -> String {
    format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: shop\n    dye: {{ tags: {{ canary: canary }} }}\n    split:\n\
         \x20     - {{ upstream: stable, weight: 100 }}\n      - {{ upstream: canary, weight: 0 }}\n\
         \x20   rollout: {{ canary: canary, steps: [50, 100], step_ms: 60000, gates: {{ window_ms: 1000, min_requests: 10, max_error_rate: 0.05 }} }}\n",
        stable.addr, canary.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_demo_canary_told_to_fail_is_taken_to_0_by_the_error_gate() {
    let stable = Demo::start("stable", &[]).await;
    let canary = Demo::start("canary", &[]).await;
    let gw = Dyegate::start(&routes(&stable, &canary));
    let traffic = Traffic::start(gw.addr(), 2, Duration::from_millis(5), vec![]);
    wait_rollout(&gw, Duration::from_secs(20), "step 1", is("progressing", 1)).await;
    let r = judged(&gw, "shop", 2).await;
    assert_eq!(r["state"], "progressing", "{r:#}");

    let set = canary.post("/fail?rate=0.3").await;
    assert_eq!(
        set,
        serde_json::json!({ "fail_rate": 0.3, "latency_ms": 0 })
    );
    let breach = Instant::now();
    let r = wait_rollout(&gw, Duration::from_secs(15), "failure", |r| {
        r["state"] == "failed"
    })
    .await;
    assert_eq!(r["table_canary_share"], 0.0, "{r:#}");
    assert!(
        breach.elapsed() <= Duration::from_millis(2000) + SLACK,
        "{r:#}"
    );
    let audit = gw.config().audit_records();
    assert!(
        audit.iter().any(|a| a["trigger"] == "rollout"
            && (a["rollout"]["reason"].as_str())
                .is_some_and(|r| r.starts_with("gate error_rate breached: "))),
        "{audit:#?}"
    );
    drop(traffic.stop().await);

    // Exactly 3 of every 10, then none once healed.
    assert_eq!(canary.failures_of(10).await, 3);
    canary.post("/fail?rate=0").await;
    assert_eq!(canary.failures_of(10).await, 0);
    let bad = Req::post("/fail?rate=2").send(canary.addr).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("from 0 to 1"), "{}", bad.text());
}

#[tokio::test]
async fn fail_rate_and_latency_from_the_command_line() {
    let canary = Demo::start("canary", &["--fail-rate", "0.5", "--latency-ms", "150"]).await;
    let started = Instant::now();
    assert_eq!(canary.failures_of(4).await, 2);
    // At least the latency asked for (a lower bound: a loaded machine only adds to it).
    assert!(started.elapsed() >= Duration::from_millis(4 * 150));
    let set = canary.post("/latency?ms=0").await;
    assert_eq!(set["latency_ms"], 0);
    let out = Command::new(env!("CARGO_BIN_EXE_demo-upstream"))
        .args(["--fail-rate", "1.5"])
        .output()
        .expect("demo-upstream runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a number from 0 to 1"));
}
