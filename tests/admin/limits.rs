//! gateway.yaml `admin.limits` end to end, with raw TCP clients: the admin listener has its own
//! small connection cap, head, body and idle deadlines, so idle or stalled admin clients are
//! closed in time and can never take the file descriptors the proxy needs; each refusal is
//! counted in `dyegate_downstream_rejected_total{listener="admin",reason}`.

use std::time::Duration;

use dyegate_suite::metrics::Series;
use dyegate_suite::raw::RawClient;
use dyegate_suite::{upstream_groups, Dyegate, GatewayConfig, Req, Upstream};
use http::{Method, StatusCode};

/// Room for a loaded two-core machine on top of a timeout.
const SLACK: Duration = Duration::from_millis(2000);

fn routes(up: &Upstream) -> String {
    format!(
        "{}routes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        upstream_groups(&[("stable", up)])
    )
}

fn gateway(up: &Upstream, admin_limits: &str) -> Dyegate {
    GatewayConfig::new(&routes(up))
        .with_admin_fields(&format!("limits: {admin_limits}"))
        .start()
}

fn admin_rejected(reason: &str) -> Series {
    Series::new(
        "dyegate_downstream_rejected_total",
        &[("listener", "admin"), ("reason", reason)],
    )
}

/// Issue 27: 2,100 idle admin connections (no token, no byte sent) exhausted a gateway's 2,048
/// descriptors: the proxy stopped accepting and `/healthz` timed out. Here the gateway may open
/// 256 files and 400 idle clients connect to the admin port: the proxy still answers while they
/// are connected, every one of them is closed (past the cap at accept, the others at the head
/// deadline), and the admin API answers again afterwards.
#[tokio::test]
async fn idle_admin_connections_cannot_take_the_descriptors_of_the_proxy() {
    let up = Upstream::start("stable");
    let gw = GatewayConfig::new(&routes(&up))
        .with_admin_fields("limits: { max_connections: 8, header_read_timeout_ms: 1000 }")
        .with_open_file_limit(256)
        .start();
    // The start's readiness probe (an admin connection opened and dropped) is admitted in its
    // own task: wait until it has come and gone (only the scrape itself open), or it may be
    // admitted after the cap is full and counted as a 401st refusal.
    gw.wait_for_metrics(Duration::from_secs(5), "only the scrape open", |s| {
        s.get("dyegate_downstream_connections", &[("listener", "admin")]) == Some(1.0)
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(RawClient::connect(gw.admin_addr()).await);
    }

    let proxied = tokio::time::timeout(Duration::from_secs(5), Req::get("/").send(gw.addr())).await;
    let proxied = proxied.unwrap_or_else(|_| {
        panic!(
            "the proxy did not answer within 5 s next to 400 idle admin connections\n{}",
            gw.logs()
        )
    });
    assert_eq!(proxied.status, StatusCode::OK);
    assert_eq!(proxied.upstream(), Some("stable"));

    // Every idle connection is closed within the head deadline (1 s) and some slack; the gateway
    // never had more than 8 of them open at once.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1000) + SLACK;
    let mut still_open = 0;
    for c in &mut idle {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !c.read_to_close(left).await.closed {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open,
        0,
        "of 400 idle admin connections, {still_open} are still open after the head deadline\n{}",
        gw.logs()
    );

    // A client sees its connection closed a moment before the gateway counts it out of the cap,
    // so a scrape made right then can be refused too: wait until every idle connection is
    // counted out (only the scrape open), allowing a few refused scrapes on the way.
    let refused = |s: &dyegate_suite::metrics::Scrape| {
        s.at(&admin_rejected("max_connections")).unwrap_or(0.0)
            + s.at(&admin_rejected("slow_headers")).unwrap_or(0.0)
    };
    let settled = gw
        .wait_for_metrics(
            Duration::from_secs(5),
            "400 admin refusals, the cap released",
            |s| {
                refused(s) >= 400.0
                    && s.get("dyegate_downstream_connections", &[("listener", "admin")])
                        == Some(1.0)
            },
        )
        .await;
    assert!(
        refused(&settled) <= 410.0,
        "400 idle connections and at most a few scrapes refused:\n{}",
        settled.dump("dyegate_downstream_rejected_total")
    );
    // Once released, an operator's request is admitted and refused nothing more.
    let (code, health) = gw.admin(Method::GET, "/healthz", None).await;
    assert_eq!(code, StatusCode::OK, "{health:#}");
    let scrape = gw.metrics().await;
    assert_eq!(
        refused(&scrape),
        refused(&settled),
        "{}",
        scrape.dump("dyegate_downstream_rejected_total")
    );
    assert!(
        scrape.at(&admin_rejected("max_connections")) >= Some(300.0),
        "most of the 400 were past the cap of 8:\n{}",
        scrape.dump("dyegate_downstream_rejected_total")
    );
    assert_eq!(
        scrape.sum(
            "dyegate_downstream_rejected_total",
            &[("listener", "proxy")]
        ),
        0.0,
        "nothing was refused on the proxy listener:\n{}",
        scrape.dump("dyegate_downstream_rejected_total")
    );
}

/// A `POST /rollback` whose body stalls is answered `408` and closed at the body deadline, and
/// nothing rolls back.
#[tokio::test]
async fn a_stalled_rollback_body_is_cut_at_the_body_deadline() {
    let up = Upstream::start("stable");
    let gw = gateway(&up, "{ body_read_timeout_ms: 800 }");
    let mut c = RawClient::connect(gw.admin_addr()).await;
    c.send(b"POST /rollback HTTP/1.1\r\nHost: a\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"to\"")
        .await;
    let got = c.read_to_close(Duration::from_millis(800) + SLACK).await;
    assert!(
        got.closed,
        "stalled body still open after {:?}: {:?}",
        got.after,
        got.text()
    );
    assert!(
        got.after >= Duration::from_millis(600),
        "closed after {:?}, before the body deadline",
        got.after
    );
    assert_eq!(got.status(), Some(408), "{}", got.text());
    assert!(
        got.text()
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        got.text()
    );
    assert_eq!(gw.version().await, 1, "nothing rolled back");
    gw.wait_for_metrics(Duration::from_secs(5), "one admin slow_body", |s| {
        s.at(&admin_rejected("slow_body")) == Some(1.0)
    })
    .await;
}

/// A keep-alive admin connection is closed once idle for `idle_timeout_ms`, and one that never
/// sends a byte at `header_read_timeout_ms`.
#[tokio::test]
async fn idle_and_silent_admin_connections_are_closed_at_their_deadlines() {
    let up = Upstream::start("stable");
    let gw = gateway(
        &up,
        "{ idle_timeout_ms: 800, header_read_timeout_ms: 1200 }",
    );
    let mut c = RawClient::connect(gw.admin_addr()).await;
    c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let first = c.read_response(Duration::from_secs(5)).await;
    assert_eq!(first.status(), Some(200), "{}", first.text());
    let got = c.read_to_close(Duration::from_millis(800) + SLACK).await;
    assert!(
        got.closed,
        "idle admin connection still open after {:?}",
        got.after
    );
    assert!(
        got.after >= Duration::from_millis(600),
        "closed after {:?}, before the idle deadline",
        got.after
    );

    let mut silent = RawClient::connect(gw.admin_addr()).await;
    let got = silent
        .read_to_close(Duration::from_millis(1200) + SLACK)
        .await;
    assert!(
        got.closed,
        "silent admin connection still open after {:?}",
        got.after
    );
    assert!(
        got.after >= Duration::from_millis(1000),
        "closed after {:?}, before the head deadline",
        got.after
    );
    assert!(got.bytes.is_empty(), "nothing to answer: {:?}", got.text());
}
