//! Session tickets (stateless resumption), as `openssl s_client -sess_out/-sess_in` sees them:
//! sessions resume across a binary upgrade (keys made by the process, handed over), on a second
//! gateway sharing the key files, and after a key rotation under the previous key; the server's
//! cipher order; `Strict-Transport-Security` on HTTPS answers only.

use dyegate_suite::certs::TestCa;
use dyegate_suite::tls::sessions::{resumed, s_client, save_sessions};
use dyegate_suite::tls::site::{tls_yaml, wait_for_tls, write_pair, SHOP};
use dyegate_suite::upgrade::Upgradable;
use dyegate_suite::{free_addr, wait_until_async, Dyegate, GatewayConfig, Req, Upstream};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many saved sessions each test offers again (the figure).
const SESSIONS: usize = 20;

/// routes.yaml: `/dead` to a port nothing listens on (a 502 of dyegate's own), the rest to
/// `up`.
fn routes(up: &Upstream) -> String {
    format!(
        "upstreams:\n  app: {{ targets: [\"{}\"] }}\n  dead: {{ targets: [\"{}\"] }}\n\
         routes:\n\
         \x20 - name: dead\n    match: {{ path_prefix: /dead }}\n    split: [{{ upstream: dead, weight: 1 }}]\n\
         \x20 - name: all\n    split: [{{ upstream: app, weight: 1 }}]\n",
        up.target(),
        free_addr()
    )
}

/// A gateway config with an HTTPS listener for SHOP, `key_files` (name, bytes) written under
/// `tickets/`, and `tls_extra` (fields of `tls:`, indented by two spaces).
fn https_config(
    up: &Upstream,
    ca: &TestCa,
    key_files: &[(&str, [u8; 80])],
    tls_extra: &str,
) -> (GatewayConfig, SocketAddr) {
    let cfg = GatewayConfig::new(&routes(up));
    write_pair(&cfg, "shop", &ca.leaf(&[SHOP]));
    for (name, bytes) in key_files {
        write_key(&cfg, name, bytes);
    }
    let tls = free_addr();
    let cfg = cfg.with_gateway_extra(&tls_yaml(tls, &["shop"], tls_extra));
    (cfg, tls)
}

/// Writes `tickets/<name>` aside and renames it over the old one (as a rotation script does).
fn write_key(cfg: &GatewayConfig, name: &str, bytes: &[u8; 80]) {
    std::fs::create_dir_all(cfg.path("tickets")).expect("tickets dir");
    let tmp = cfg.path(&format!("tickets/.{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write key");
    std::fs::rename(&tmp, cfg.path(&format!("tickets/{name}"))).expect("rename key");
}

async fn status(admin: SocketAddr) -> Value {
    match dyegate_suite::upgrade::get_once(admin, "/status").await {
        Ok((200, json)) => json,
        other => panic!("GET /status: {other:?}"),
    }
}

/// Runs the blocking `openssl` helpers off the test's runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("openssl thread")
}

async fn save(addr: SocketAddr, dir: &Path) -> Vec<PathBuf> {
    let dir = dir.to_path_buf();
    blocking(move || save_sessions(addr, SHOP, &dir, SESSIONS)).await
}

async fn resume(addr: SocketAddr, sessions: &[PathBuf]) -> usize {
    let sessions = sessions.to_vec();
    blocking(move || resumed(addr, SHOP, &sessions)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_saved_before_an_upgrade_resume_after_it() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let (cfg, tls) = https_config(&up, &ca, &[], "");
    // A short watch (the old process stays that long after the handover).
    let cfg = cfg.with_gateway_extra("upgrade: { watch_ms: 2000 }\n");
    let gw = Upgradable::start(cfg).await;
    wait_for_tls(tls).await;
    let before = status(gw.admin_addr()).await;
    assert_eq!(
        before["tls"]["session_tickets"]["keys"], "generated",
        "{before:#}"
    );
    assert_eq!(before["process"]["generation"], 0, "{before:#}");

    let dir = tempfile::tempdir().expect("tempdir");
    let sessions = save(tls, dir.path()).await;
    assert_eq!(
        resume(tls, &sessions).await,
        SESSIONS,
        "resumption on the same process"
    );

    let run = gw.upgrade_ok().await;
    let after = status(gw.admin_addr()).await;
    assert_eq!(Some(after["pid"].as_u64().unwrap_or(0) as u32), run.new_pid);
    let reused = resume(tls, &sessions).await;
    println!("{reused} of {SESSIONS} sessions saved before the upgrade resumed after it");
    assert_eq!(reused, SESSIONS, "{}", gw.logs());
    // The same generated keys, handed over; one more generation, the handover recorded.
    assert_eq!(
        after["tls"]["session_tickets"]["key_names"],
        before["tls"]["session_tickets"]["key_names"]
    );
    assert_eq!(after["process"]["generation"], 1, "{after:#}");
    let handover = &after["process"]["handovers"][0];
    assert_eq!(handover["kind"], "upgrade");
    assert_eq!(handover["from_pid"], gw.gateway().pid());
    assert_eq!(handover["to_pid"], after["pid"]);
    assert!(
        handover["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{after:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_gateway_with_the_same_key_files_resumes_the_first_ones_sessions() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let shared = [7u8; 80];
    let files = "  session_tickets: { key_files: [tickets/current.key], lifetime_s: 3600 }\n";
    let (one, tls_one) = https_config(&up, &ca, &[("current.key", shared)], files);
    let (two, tls_two) = https_config(&up, &ca, &[("current.key", shared)], files);
    let (other, tls_other) = https_config(&up, &ca, &[("current.key", [8u8; 80])], files);
    let (one, two, other): (Dyegate, Dyegate, Dyegate) = (one.start(), two.start(), other.start());
    for addr in [tls_one, tls_two, tls_other] {
        wait_for_tls(addr).await;
    }
    let s = status(one.admin_addr()).await;
    assert_eq!(s["tls"]["session_tickets"]["keys"], "files", "{s:#}");
    assert_eq!(
        s["tls"]["session_tickets"]["key_names"],
        serde_json::json!(["07070707070707070707070707070707"])
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let sessions = save(tls_one, dir.path()).await;
    let on_two = resume(tls_two, &sessions).await;
    println!(
        "{on_two} of {SESSIONS} sessions of gateway one resumed on gateway two (same key file)"
    );
    assert_eq!(on_two, SESSIONS, "{}", two.logs());
    assert_eq!(
        resume(tls_other, &sessions[..3]).await,
        0,
        "another key must not decrypt"
    );
    // TLS 1.2 session tickets (RFC 5077) under the same keys.
    let file = dir.path().join("tls12.pem");
    let saved = file.clone();
    let first = blocking(move || s_client(tls_one, SHOP, Some(&saved), None, &["-tls1_2"])).await;
    assert_eq!(
        (first.protocol.as_str(), first.reused),
        ("TLSv1.2", false),
        "{}",
        first.output
    );
    let again = blocking(move || s_client(tls_two, SHOP, None, Some(&file), &["-tls1_2"])).await;
    assert_eq!(
        (again.protocol.as_str(), again.reused),
        ("TLSv1.2", true),
        "{}",
        again.output
    );
    drop((one, two, other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_key_file_still_resumes_tickets_of_the_previous_key() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let (a, b, c, old) = ([0xaau8; 80], [0xbbu8; 80], [0xccu8; 80], [0x11u8; 80]);
    let files = "  session_tickets: { key_files: [tickets/current.key, tickets/previous.key] }\n";
    let (cfg, tls) = https_config(
        &up,
        &ca,
        &[("current.key", a), ("previous.key", old)],
        files,
    );
    let gw = cfg.start();
    wait_for_tls(tls).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sessions = save(tls, dir.path()).await;

    // Rotation: the new key first, the one that encrypted until now second.
    write_key(gw.config(), "previous.key", &a);
    write_key(gw.config(), "current.key", &b);
    let names = serde_json::json!(["bb".repeat(16), "aa".repeat(16)]);
    let rotated = wait_until_async(Duration::from_secs(10), || async {
        status(gw.admin_addr()).await["tls"]["session_tickets"]["key_names"] == names
    })
    .await;
    assert!(
        rotated,
        "the key files were not read again: {:#}\n{}",
        status(gw.admin_addr()).await,
        gw.logs()
    );
    let reused = resume(tls, &sessions).await;
    println!("{reused} of {SESSIONS} sessions resumed after a key rotation (previous key second)");
    assert_eq!(reused, SESSIONS, "{}", gw.logs());
    // The old key gone: its sessions make full handshakes.
    write_key(gw.config(), "previous.key", &c);
    let gone = serde_json::json!(["bb".repeat(16), "cc".repeat(16)]);
    let dropped = wait_until_async(Duration::from_secs(10), || async {
        status(gw.admin_addr()).await["tls"]["session_tickets"]["key_names"] == gone
    })
    .await;
    assert!(dropped, "{}", gw.logs());
    assert_eq!(resume(tls, &sessions[..3]).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_orders_cipher_suites_and_https_answers_carry_hsts() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let (cfg, tls) = https_config(
        &up,
        &ca,
        &[],
        "  hsts: { max_age_s: 31536000, include_subdomains: true }\n",
    );
    let gw = cfg.start();
    wait_for_tls(tls).await;

    // The client prefers ChaCha20; the server's order (AES-GCM first) wins.
    let h = blocking(move || {
        s_client(
            tls,
            SHOP,
            None,
            None,
            &[
                "-ciphersuites",
                "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
            ],
        )
    })
    .await;
    assert_eq!(
        (h.protocol.as_str(), h.cipher.as_str()),
        ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
        "{}",
        h.output
    );

    let hsts = "strict-transport-security: max-age=31536000; includeSubDomains";
    let proxied = blocking(move || s_client(tls, SHOP, None, None, &[])).await;
    assert!(
        proxied.response_head.starts_with("HTTP/1.1 200"),
        "{}",
        proxied.output
    );
    assert!(
        proxied
            .response_head
            .to_ascii_lowercase()
            .contains(&hsts.to_ascii_lowercase()),
        "{}",
        proxied.response_head
    );
    // dyegate's own error answer (the `dead` upstream), over HTTPS: the header too.
    let own = blocking(move || {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sk", "-D", "-", "-o", "/dev/null", "--resolve"])
            .arg(format!("{SHOP}:{}:127.0.0.1", tls.port()))
            .arg(format!("https://{SHOP}:{}/dead", tls.port()));
        String::from_utf8_lossy(&cmd.output().expect("curl").stdout).into_owned()
    })
    .await;
    assert!(
        own.starts_with("HTTP/1.1 502") || own.starts_with("HTTP/2 502"),
        "{own}"
    );
    assert!(
        own.to_ascii_lowercase()
            .contains(&hsts.to_ascii_lowercase()),
        "{own}"
    );
    // Plain HTTP: never.
    let plain = Req::get("/plain").send(gw.addr()).await;
    assert_eq!(plain.status, http::StatusCode::OK);
    assert_eq!(plain.header("strict-transport-security"), None);
}

#[test]
fn check_names_a_key_file_of_the_wrong_size() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let (cfg, _) = https_config(
        &up,
        &ca,
        &[],
        "  session_tickets: { key_files: [tickets/short.key] }\n",
    );
    std::fs::create_dir_all(cfg.path("tickets")).expect("dir");
    std::fs::write(cfg.path("tickets/short.key"), [1u8; 32]).expect("write");
    let out = cfg.check();
    assert_eq!(out.code, Some(1), "{out}");
    let text = cfg.gateway_text();
    let offset = text.find("tickets/short.key").expect("in gateway.yaml");
    let line = text[..offset].matches('\n').count() + 1;
    let col = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    assert_eq!(
        out.stdout,
        format!(
            "{}:{line}:{col}: tls.session_tickets.key_files[0]: found 32 bytes in {}, expected 80 or 48 random bytes (openssl rand 80 > FILE)\n",
            cfg.gateway_file().display(),
            cfg.path("tickets/short.key").display()
        )
    );
}
