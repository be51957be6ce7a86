//! HTTPS listeners end to end with real TLS clients (rustls and curl): the certificate chosen by
//! SNI (exact, wildcard, default), HTTP/2 by ALPN and HTTP/1.1 without it, `min_version`,
//! `handshake_timeout_ms` against silent and stalled clients, and the handshake counters.

use dyegate_suite::certs::TestCa;
use dyegate_suite::metrics::Scrape;
use dyegate_suite::tls::site::{Site, API, SHOP};
use dyegate_suite::tls::{curl_https, Hello, TlsClient};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Generous for a debug build on a loaded machine.
const SETTLE: Duration = Duration::from_secs(10);

fn handshakes(scrape: &Scrape, result: &str) -> f64 {
    scrape.value("dyegate_tls_handshakes_total", &[("result", result)])
}

#[tokio::test]
async fn sni_picks_exact_then_wildcard_then_the_default() {
    let ca = TestCa::new("dyegate test CA");
    let shop = ca.leaf(&[SHOP]);
    let wildcard = ca.leaf(&["*.example.com"]);
    let site = Site::start(
        ca,
        &[("shop", &shop), ("wildcard", &wildcard)],
        "  default: certs/wildcard.pem\n",
        "",
    )
    .await;
    let before = site.gw.metrics().await;

    // The rustls client: which leaf each hello gets.
    assert_eq!(site.served(Some(SHOP)).await, shop.cert_der, "exact name");
    assert_eq!(
        site.served(Some(API)).await,
        wildcard.cert_der,
        "*.example.com"
    );
    assert_eq!(
        site.served(None).await,
        wildcard.cert_der,
        "no SNI: the default"
    );
    assert_eq!(
        site.served(Some("elsewhere.test")).await,
        wildcard.cert_der,
        "an unknown name: the default"
    );

    // curl verifies what it gets against the CA, for the name it asked for, and the request
    // is proxied (routes match on the Host as on plain HTTP).
    let ca_file = site.cfg().write("ca.pem", &site.ca.pem());
    for name in [SHOP, API] {
        let out = curl_https(site.tls, name, "/hello", &ca_file, &[]);
        assert_eq!(out.status, 200, "{name}: {out:?}");
        assert!(
            out.body.contains("\"path\":\"/hello\""),
            "{name}: {}",
            out.body
        );
    }
    let recorded = site.upstream.requests();
    assert!(
        [SHOP, API].iter().all(|name| {
            let host = format!("{name}:{}", site.tls.port());
            recorded
                .iter()
                .any(|r| r.header("host") == Some(host.as_str()))
        }),
        "both names reached the upstream with their Host: {recorded:?}"
    );

    // A client may be done before the gateway has counted its handshake: wait for the count.
    let ok = |s: &Scrape| handshakes(s, "ok") - handshakes(&before, "ok");
    (site.gw)
        .wait_for_metrics(SETTLE, "6 handshakes counted ok", |s| ok(s) >= 6.0)
        .await;
}

#[tokio::test]
async fn h2_by_alpn_http1_without_it_and_h2_off() {
    let ca = TestCa::new("dyegate test CA");
    let shop = ca.leaf(&[SHOP]);
    let site = Site::start(ca, &[("shop", &shop)], "", "").await;
    let ca_file = site.cfg().write("ca.pem", &site.ca.pem());

    let h2 = curl_https(site.tls, SHOP, "/", &ca_file, &["--http2"]);
    assert_eq!((h2.status, h2.http_version.as_str()), (200, "2"), "{h2:?}");
    let h1 = curl_https(site.tls, SHOP, "/", &ca_file, &["--http1.1"]);
    assert_eq!(
        (h1.status, h1.http_version.as_str()),
        (200, "1.1"),
        "{h1:?}"
    );

    // What ALPN agreed, seen by the rustls client.
    let offer = |alpn: &[&[u8]]| Hello {
        sni: Some(SHOP.into()),
        alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        tls12_only: false,
    };
    let c = TlsClient::connect_with(site.tls, offer(&[b"h2", b"http/1.1"]))
        .await
        .expect("tls");
    assert_eq!(c.alpn().as_deref(), Some(&b"h2"[..]));
    let mut c = TlsClient::connect_with(site.tls, offer(&[]))
        .await
        .expect("tls");
    assert_eq!(c.alpn(), None);
    assert_eq!(
        c.get(SHOP, "/no-alpn")
            .await
            .expect("HTTP/1.1 without ALPN")
            .0,
        200
    );

    // h2: false offers only http/1.1.
    let ca = TestCa::new("dyegate test CA");
    let shop = ca.leaf(&[SHOP]);
    let site = Site::start(ca, &[("shop", &shop)], "  h2: false\n", "").await;
    let ca_file = site.cfg().write("ca.pem", &site.ca.pem());
    let out = curl_https(site.tls, SHOP, "/", &ca_file, &["--http2"]);
    assert_eq!(
        (out.status, out.http_version.as_str()),
        (200, "1.1"),
        "{out:?}"
    );
}

#[tokio::test]
async fn min_version_1_3_refuses_a_tls_1_2_client() {
    let tls12 = |sni: &str| Hello {
        sni: Some(sni.into()),
        alpn: Vec::new(),
        tls12_only: true,
    };
    let ca = TestCa::new("dyegate test CA");
    let shop = ca.leaf(&[SHOP]);
    let site = Site::start(ca, &[("shop", &shop)], "", "").await;
    let mut c = TlsClient::connect_with(site.tls, tls12(SHOP))
        .await
        .expect("TLS 1.2 accepted by default");
    assert_eq!(c.get(SHOP, "/").await.expect("request").0, 200);

    let ca = TestCa::new("dyegate test CA");
    let shop = ca.leaf(&[SHOP]);
    let site = Site::start(ca, &[("shop", &shop)], "  min_version: \"1.3\"\n", "").await;
    let before = site.gw.metrics().await;
    assert!(
        TlsClient::connect_with(site.tls, tls12(SHOP))
            .await
            .is_err(),
        "a TLS 1.2-only client is refused under min_version 1.3"
    );
    assert!(TlsClient::connect(site.tls, Some(SHOP)).await.is_ok());
    // The refusal reaches the client before the gateway counts it: wait for the count.
    (site.gw)
        .wait_for_metrics(SETTLE, "the refused handshake counted", |s| {
            handshakes(s, "error") > handshakes(&before, "error")
        })
        .await;
}

/// A client that connects and sends nothing, and one that stops in the middle of its hello,
/// are both closed after `handshake_timeout_ms` (not the 10 s of `limits.header_read_timeout_ms`,
/// nor Pingora's 60 s), and counted as timeouts.
#[tokio::test]
async fn the_handshake_timeout_closes_silent_and_stalled_clients() {
    let ca = TestCa::new("dyegate test CA");
    let shop = ca.leaf(&[SHOP]);
    let site = Site::start(ca, &[("shop", &shop)], "  handshake_timeout_ms: 600\n", "").await;
    let before = site.gw.metrics().await;

    let closed_after = |partial: &'static [u8]| {
        let addr = site.tls;
        std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.write_all(partial).expect("write");
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let start = Instant::now();
            let mut buf = [0u8; 64];
            // 0 (closed) or an error (reset): either way the gateway ended it.
            let _ = s.read(&mut buf);
            start.elapsed()
        })
    };
    // A TLS record header announcing a 512-byte handshake message, and 5 bytes of it.
    const HALF_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
    let silent = closed_after(b"");
    let stalled = closed_after(HALF_HELLO);
    for (what, t) in [("silent", silent), ("stalled", stalled)] {
        let took = t.join().expect("client thread");
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(5),
            "{what} client closed after {took:?}, expected about 600 ms"
        );
    }
    // The gateway drops a timed-out connection before it counts the timeout: the client sees the
    // close a moment before the counter moves.
    let timeouts = |s: &Scrape| handshakes(s, "timeout") - handshakes(&before, "timeout");
    let after = (site.gw)
        .wait_for_metrics(SETTLE, "two handshake timeouts", |s| timeouts(s) >= 2.0)
        .await;
    assert_eq!(
        timeouts(&after),
        2.0,
        "{}",
        after.dump("dyegate_tls_handshakes_total")
    );
    // The listener still serves.
    assert_eq!(site.served(Some(SHOP)).await, shop.cert_der);
}
