//! Live certificates: a certificate replaced on disk (rename-write, or a Kubernetes Secret's
//! `..data` symlink swap) is served to new handshakes within a second while an open keep-alive
//! connection keeps working; a broken pair keeps the old certificate and says why (log,
//! `/status`, failure counter); SIGHUP and `dyegate reload` re-read the files.

use dyegate_suite::certs::{Leaf, TestCa};
use dyegate_suite::tls::site::{Site, SHOP};
use dyegate_suite::tls::TlsClient;
use std::time::Duration;

/// The spec: new handshakes see a new certificate within 1 s of the write.
const WITHIN: Duration = Duration::from_secs(1);

fn failures(scrape: &dyegate_suite::metrics::Scrape) -> f64 {
    scrape.value(
        "dyegate_tls_certificate_reloads_total",
        &[("result", "failure")],
    )
}

/// Replaces `certs/<name>.{pem,key}` the way deploy tools do: each written aside and renamed
/// over the old one (key first, then the certificate, a few microseconds apart).
fn replace_pair(site: &Site, name: &str, leaf: &Leaf) {
    site.cfg()
        .write_and_rename(&format!("certs/{name}.key"), &leaf.key_pem);
    site.cfg()
        .write_and_rename(&format!("certs/{name}.pem"), &leaf.cert_pem);
}

#[tokio::test]
async fn a_replaced_certificate_is_served_within_a_second_and_open_connections_keep_theirs() {
    let ca = TestCa::new("dyegate test CA");
    let v1 = ca.leaf(&[SHOP]);
    let v2 = ca.leaf(&[SHOP]);
    let site = Site::start(ca, &[("shop", &v1)], "", "").await;

    let mut open = TlsClient::connect(site.tls, Some(SHOP)).await.expect("tls");
    assert_eq!(open.peer_leaf(), v1.cert_der);
    assert_eq!(open.get(SHOP, "/before").await.expect("request").0, 200);

    replace_pair(&site, "shop", &v2);
    let took = site
        .wait_served(Some(SHOP), &v2, Duration::from_secs(10))
        .await;
    let took = took.expect("the new certificate was never served");
    println!("new certificate served {took:?} after the write");
    assert!(
        took < WITHIN,
        "served after {took:?}, expected within {WITHIN:?}"
    );

    // The connection opened before the swap still works, on the certificate it got.
    assert_eq!(
        open.get(SHOP, "/after")
            .await
            .expect("keep-alive request")
            .0,
        200
    );
    assert_eq!(open.peer_leaf(), v1.cert_der);
    let status = site.gw.status().await;
    assert_eq!(status["tls"]["trigger"], "file", "{status:#}");
    assert_eq!(status["tls"]["failing"], false);
}

#[tokio::test]
async fn a_broken_pair_keeps_the_old_certificate_and_shows_the_error() {
    let ca = TestCa::new("dyegate test CA");
    let good = ca.leaf(&[SHOP]);
    let other = ca.leaf(&[SHOP]);
    let site = Site::start(ca, &[("shop", &good)], "", "").await;
    let before = site.gw.metrics().await;

    // A new certificate with the old (so: wrong) key.
    site.cfg()
        .write_and_rename("certs/shop.pem", &other.cert_pem);
    let status = site
        .gw
        .wait_for_status(
            Duration::from_secs(10),
            "a refused certificate reload",
            |s| s["tls"]["failing"] == true,
        )
        .await;
    let error = status["tls"]["last_error"]["errors"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.starts_with("tls.certificates[0].key: found a key in ")
            && error.contains("does not match the certificate in"),
        "{status:#}"
    );
    assert_eq!(status["tls"]["last_error"]["trigger"], "file");
    assert_eq!(
        site.served(Some(SHOP)).await,
        good.cert_der,
        "the old pair is still served"
    );
    let after = site.gw.metrics().await;
    assert_eq!(
        failures(&after) - failures(&before),
        1.0,
        "{}",
        after.text()
    );
    assert!(
        site.gw.logs().contains("certificates: reload (file) refused, the served certificates are kept: tls.certificates[0].key"),
        "{}",
        site.gw.logs()
    );

    // Garbage in the key file: still the old pair.
    site.cfg().write_and_rename("certs/shop.key", "not a key\n");
    let status = site
        .gw
        .wait_for_status(Duration::from_secs(10), "a refused key file", |s| {
            s["tls"]["last_error"]["errors"][0]
                .as_str()
                .is_some_and(|e| e.contains("found no private key in"))
        })
        .await;
    assert_eq!(status["tls"]["failing"], true);
    assert_eq!(site.served(Some(SHOP)).await, good.cert_der);

    // The matching key: the new pair is served, the error stays as history.
    site.cfg()
        .write_and_rename("certs/shop.key", &other.key_pem);
    assert!(site
        .wait_served(Some(SHOP), &other, Duration::from_secs(10))
        .await
        .is_some());
    let status = site.gw.status().await;
    assert_eq!(status["tls"]["failing"], false, "{status:#}");
    assert!(status["tls"]["last_error"]["errors"].is_array());
}

#[tokio::test]
async fn sighup_and_dyegate_reload_read_the_certificates_again() {
    let ca = TestCa::new("dyegate test CA");
    let v1 = ca.leaf(&[SHOP]);
    let v2 = ca.leaf(&[SHOP]);
    let v3 = ca.leaf(&[SHOP]);
    // No watching: only the explicit triggers read the files.
    let site = Site::start(ca, &[("shop", &v1)], "", "reload: { watch: false }\n").await;

    replace_pair(&site, "shop", &v2);
    // time is tested: with the watch off, the new pair is still not served half a second on (a watched change is served within the 200 ms debounce and a reload).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(site.served(Some(SHOP)).await, v1.cert_der, "not watched");
    site.gw.signal(libc::SIGHUP);
    assert!(site
        .wait_served(Some(SHOP), &v2, Duration::from_secs(10))
        .await
        .is_some());
    assert_eq!(site.gw.status().await["tls"]["trigger"], "sighup");

    replace_pair(&site, "shop", &v3);
    let out = site.cfg().cli(&["reload"]);
    assert_eq!(out.code, Some(0), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(report["tls"]["result"], "applied", "{out}");
    assert_eq!(site.served(Some(SHOP)).await, v3.cert_der);

    // A broken pair: `dyegate reload` fails and says which half failed.
    site.cfg().write("certs/shop.key", "broken\n");
    let out = site.cfg().cli(&["reload"]);
    assert_eq!(out.code, Some(1), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(report["tls"]["result"], "failed", "{out}");
    assert_ne!(
        report["result"], "failed",
        "the routes reload itself went through: {out}"
    );
    assert!(report["tls"]["errors"][0]
        .as_str()
        .unwrap_or_default()
        .starts_with("tls.certificates[0].key: "));
    assert_eq!(site.served(Some(SHOP)).await, v3.cert_der);
}

/// A Kubernetes Secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..2026_v1`; an update
/// writes a new `..2026_v2` and swaps the `..data` link in one rename.
#[tokio::test]
async fn a_secret_volume_symlink_swap_is_seen() {
    use std::os::unix::fs::symlink;
    let ca = TestCa::new("dyegate test CA");
    let v1 = ca.leaf(&[SHOP]);
    let v2 = ca.leaf(&[SHOP]);
    // Start on a plain pair, then turn certs/ into a Secret layout before the gateway starts.
    let upstream = dyegate_suite::Upstream::start("app");
    let tls = dyegate_suite::free_addr();
    let cfg = dyegate_suite::GatewayConfig::new(&dyegate_suite::tls::site::routes(&upstream));
    let secret = cfg.path("secret");
    let payload = |name: &str, leaf: &Leaf| {
        let dir = secret.join(name);
        std::fs::create_dir_all(&dir).expect("payload dir");
        std::fs::write(dir.join("tls.crt"), &leaf.cert_pem).expect("crt");
        std::fs::write(dir.join("tls.key"), &leaf.key_pem).expect("key");
    };
    payload("..2026_v1", &v1);
    symlink("..2026_v1", secret.join("..data")).expect("..data");
    symlink("..data/tls.crt", secret.join("tls.crt")).expect("tls.crt");
    symlink("..data/tls.key", secret.join("tls.key")).expect("tls.key");
    let cfg = cfg.with_gateway_extra(&format!(
        "tls:\n  listen: [\"{tls}\"]\n  certificates: [{{ cert: secret/tls.crt, key: secret/tls.key }}]\n"
    ));
    let gw = cfg.start();
    dyegate_suite::tls::site::wait_for_tls(tls).await;
    let leaf_of = |sni| async move {
        TlsClient::connect(tls, sni)
            .await
            .map(|c| c.peer_leaf())
            .ok()
    };
    assert_eq!(leaf_of(Some(SHOP)).await, Some(v1.cert_der.clone()));

    payload("..2026_v2", &v2);
    symlink("..2026_v2", secret.join("..data_tmp")).expect("..data_tmp");
    let swapped = std::time::Instant::now();
    std::fs::rename(secret.join("..data_tmp"), secret.join("..data")).expect("swap");
    let seen = dyegate_suite::wait_until_async(Duration::from_secs(10), || async {
        leaf_of(Some(SHOP)).await == Some(v2.cert_der.clone())
    })
    .await;
    let took = swapped.elapsed();
    assert!(seen, "the swapped Secret was never served\n{}", gw.logs());
    println!("swapped Secret served {took:?} after the swap");
    assert!(
        took < WITHIN,
        "served after {took:?}, expected within {WITHIN:?}"
    );
}
