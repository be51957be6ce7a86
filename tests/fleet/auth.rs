//! etcd with authentication, end to end with a real etcd whose auth tokens live 2 s: a push
//! after the gateway's token expired is applied without a disconnect (the gateway authenticates
//! again on "invalid auth token", keeping its watch).

use dyegate_suite::etcd::fleet::{Fleet, PREFIX, SETTLE};
use dyegate_suite::{EtcdServer, GatewayConfig, Upstream};

const PASSWORD: &str = "s3cret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_after_the_auth_token_expired_is_applied_without_a_disconnect() {
    let mut etcd = EtcdServer::start_with(&["--auth-token-ttl", "2"]);
    etcd.enable_auth(PASSWORD);
    let fleet = Fleet {
        etcd,
        blue: Upstream::start("blue"),
        green: Upstream::start("green"),
    };
    // The dial timeout covers authenticating, a bcrypt check of the password in etcd: slow on a
    // loaded machine.
    let config = GatewayConfig::new(&fleet.routes_to("blue")).with_source(&format!(
        "source: {{ etcd: {{ endpoints: [\"{}\"], prefix: \"{PREFIX}\", dial_timeout_ms: 5000, username: root, password_file: etcd.pass }} }}\n",
        fleet.etcd.endpoint()
    ));
    config.write("etcd.pass", PASSWORD);
    fleet.push(&config, "blue");
    let gw = config.start();
    for group in ["green", "blue"] {
        // time is tested: the gateway's auth token (2 s TTL, refreshed by use) must expire idle
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let pushed = fleet.push(gw.config(), group);
        gw.wait_for_status(SETTLE, "the push", |s| s["version"] == pushed)
            .await;
    }
    let status = gw.status().await;
    assert_eq!(status["connected"], true, "{status:#}");
    let logs = gw.logs();
    assert!(!logs.contains("etcd: disconnected"), "{logs}");
    assert!(logs.contains("authenticating again"), "{logs}");
}
