//! Answers that break after their head are the canary's errors (issue 27, item 1): a canary that
//! answers 200 and resets the connection mid-body, one whose body stalls until `read_ms` cuts it,
//! and an h2c gRPC canary that sends its head and one message and then resets the stream without
//! trailers are taken to 0 by the error-rate gate, as a canary answering 5xx is, and their
//! requests are counted under `status_class="error"`, not `2xx`. Before, each of these rollouts
//! went on to 100 and succeeded with 0 errors in its window.

use std::time::Duration;

use dyegate_suite::grpc::{grpc_call, GrpcStreamServer, StreamScript};
use dyegate_suite::metrics::REQUESTS;
use dyegate_suite::rollout::*;
use dyegate_suite::upstream::Fault;
use dyegate_suite::{poll_until, Dyegate, GatewayConfig};
use serde_json::Value;

/// 50% then 100%, held a minute per step: only the gates move the rollout in these tests.
const GATED: &str = "steps: [50, 100], step_ms: 60000, gates: { window_ms: 1000, min_requests: 10, max_error_rate: 0.05 }";

/// The rollout of `shop` failed on its error-rate gate within the window + 1 s (+ `extra`, the
/// time a broken answer takes to break, + slack) of the breach, its canary is at 0, and the
/// canary's broken answers are counted with `status_class="error"`.
async fn failed_on_errors(gw: &Dyegate, r: &Value, took: Duration, extra: Duration) {
    assert!(
        took <= Duration::from_millis(2000) + extra + SLACK,
        "failed {took:?} after the breach\n{r:#}"
    );
    assert_eq!(r["state"], "failed", "{r:#}");
    assert_eq!(r["table_canary_share"], 0.0, "{r:#}");
    let audit = gw.config().audit_records();
    let abort = (audit.iter())
        .find(|r| r["trigger"] == "rollout" && r["step"] == 0 && r["result"] == "applied")
        .unwrap_or_else(|| panic!("no abort in the audit log: {audit:#?}"));
    let reason = abort["rollout"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("gate error_rate breached: "),
        "{abort:#}"
    );
    let errors = [
        ("route", "shop"),
        ("upstream_group", "canary"),
        ("status_class", "error"),
    ];
    gw.wait_for_metrics(Duration::from_secs(5), "broken answers counted", |s| {
        s.sum(REQUESTS, &errors) >= 10.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_that_resets_mid_body_is_taken_to_0_by_the_error_gate() {
    let (took, r, _, _, gw, _) = break_canary(GATED, Fault::ResetMidResponse, 4).await;
    failed_on_errors(&gw, &r, took, Duration::from_millis(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_whose_body_stalls_until_read_ms_is_taken_to_0_by_the_error_gate() {
    let read_ms = "    timeouts: { read_ms: 200 }\n";
    let (took, r, _, _, gw, _) = break_canary_with(GATED, read_ms, Fault::StallBody, 12).await;
    failed_on_errors(&gw, &r, took, Duration::from_millis(200)).await;
}

/// Route `grpc`: h2c groups `stable` and `canary`, a rollout from 0% to 50% and 100% a second
/// apart while its gates hold (so a canary whose errors go unseen succeeds within seconds).
fn grpc_routes(stable: &str, canary: &str) -> String {
    format!(
        "upstreams:
  stable: {{ targets: [\"{stable}\"], protocol: h2c }}
  canary: {{ targets: [\"{canary}\"], protocol: h2c }}
routes:
  - name: grpc
    split: [{{ upstream: stable, weight: 100 }}, {{ upstream: canary, weight: 0 }}]
    rollout: {{ canary: canary, steps: [50, 100], step_ms: 1000, gates: {{ window_ms: 1000, min_requests: 5, max_error_rate: 0.2 }} }}
"
    )
}

/// A gRPC canary whose calls get their head and one message, then a reset stream and no
/// `grpc-status`, whatever the reset's reason (`NO_ERROR` ends the upstream stream without an
/// error Pingora sees; `INTERNAL_ERROR` breaks it): its rollout fails on the error gate at step
/// 1 instead of succeeding, and the calls are counted as errors with `grpc_status="none"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grpc_canary_that_resets_its_streams_without_trailers_fails_its_rollout() {
    let ok = StreamScript {
        messages: 1,
        pause: Duration::ZERO,
        ..StreamScript::default()
    };
    let stable = GrpcStreamServer::start("stable", ok.clone());
    for reason in [h2::Reason::INTERNAL_ERROR, h2::Reason::NO_ERROR] {
        let broken = StreamScript {
            reset: Some(reason),
            ..ok.clone()
        };
        let canary = GrpcStreamServer::start("canary", broken);
        let gw = GatewayConfig::new(&grpc_routes(&stable.target(), &canary.target())).start();
        let call_and_look = || async {
            let _ = grpc_call(gw.addr(), "/test.Feed/Watch", &[], b"watch").await;
            gw.admin_get("/rollouts/grpc").await
        };
        let ended = poll_until(Duration::from_secs(20), call_and_look, |r| {
            r["state"] == "failed" || r["state"] == "succeeded"
        });
        let r = ended.await.unwrap_or_else(|r| r);
        assert_eq!(
            r["state"],
            "failed",
            "reset {reason:?}: {r:#}\n{}",
            gw.logs()
        );
        assert_eq!(r["table_canary_share"], 0.0, "{r:#}");
        assert!(
            r["history"].to_string().contains("error_rate"),
            "failed on the error rate: {r:#}"
        );
        let errors = [
            ("route", "grpc"),
            ("upstream_group", "canary"),
            ("status_class", "error"),
            ("grpc_status", "none"),
        ];
        gw.wait_for_metrics(Duration::from_secs(5), "the broken calls counted", |s| {
            s.sum(REQUESTS, &errors) >= 5.0
        })
        .await;
        assert!(
            canary.requests().len() >= 5,
            "reset {reason:?}: the canary got {} calls",
            canary.requests().len()
        );
    }
}
