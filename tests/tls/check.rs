//! Certificates checked before they are served: `dyegate check` (parse, key matches, not
//! expired; a warning within 14 days of expiry), a gateway that refuses to start on a bad pair,
//! and what `/status` and the expiry gauge say about the pairs being served.

use dyegate_suite::certs::TestCa;
use dyegate_suite::tls::self_signed_valid;
use dyegate_suite::tls::site::{routes, tls_yaml, write_pair, Site, SHOP};
use dyegate_suite::{free_addr, GatewayConfig, Upstream};

const DAY: i64 = 86_400;

/// A config with the pairs `names` (already written) on a fresh HTTPS address.
fn config_with(cfg: GatewayConfig, names: &[&str]) -> GatewayConfig {
    let tls = tls_yaml(free_addr(), names, "");
    cfg.with_gateway_extra(&tls)
}

/// The line and column of `needle`'s first occurrence in gateway.yaml, as errors name them.
fn at(cfg: &GatewayConfig, needle: &str) -> String {
    let text = cfg.gateway_text();
    let offset = text.find(needle).expect("needle in gateway.yaml");
    let line = text[..offset].matches('\n').count() + 1;
    let col = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{}:{line}:{col}", cfg.gateway_file().display())
}

#[test]
fn check_validates_every_pair_and_warns_before_expiry() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let cfg = GatewayConfig::new(&routes(&up));
    write_pair(&cfg, "shop", &ca.leaf(&[SHOP]));
    let (cert, key) = self_signed_valid(&["soon.example.com"], -DAY, 3 * DAY + 3600);
    cfg.write("certs/soon.pem", &cert);
    cfg.write("certs/soon.key", &key);
    let cfg = config_with(cfg, &["shop", "soon"]);
    let out = cfg.check();
    assert_eq!(out.code, Some(0), "{out}");
    let soon = cfg.path("certs/soon.pem");
    let warning = out
        .line_starting_with("warning: ")
        .unwrap_or_else(|| panic!("a warning: {out}"));
    assert!(
        warning.starts_with(&format!(
            "warning: {}: certificate soon.example.com expires in 3 days, at ",
            soon.display()
        )),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("warning: ")).count(),
        1,
        "{out}"
    );
    assert!(
        out.line_starting_with("OK: 2 routes, 1 upstreams")
            .is_some(),
        "{out}"
    );
}

#[test]
fn check_names_the_field_and_the_file_of_a_bad_pair() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let cfg = GatewayConfig::new(&routes(&up));
    let shop = ca.leaf(&[SHOP]);
    let other = ca.leaf(&[SHOP]);
    std::fs::create_dir_all(cfg.path("certs")).expect("certs");
    // 0: the key of another certificate; 1: expired; 2: no such file; 3: not PEM.
    cfg.write("certs/mismatch.pem", &shop.cert_pem);
    cfg.write("certs/mismatch.key", &other.key_pem);
    let (cert, key) = self_signed_valid(&["old.example.com"], -30 * DAY, -DAY);
    cfg.write("certs/expired.pem", &cert);
    cfg.write("certs/expired.key", &key);
    cfg.write("certs/garbage.pem", "hello\n");
    cfg.write("certs/garbage.key", &shop.key_pem);
    cfg.write("certs/missing.pem", &shop.cert_pem);
    let cfg = config_with(cfg, &["mismatch", "expired", "missing", "garbage"]);
    let out = cfg.check();
    assert_eq!(out.code, Some(1), "{out}");
    let path = |f: &str| cfg.path(f).display().to_string();
    let expected = [
        format!(
            "{}: tls.certificates[0].key: found a key in {} that does not match the certificate in {} (",
            at(&cfg, "certs/mismatch.key"),
            path("certs/mismatch.key"),
            path("certs/mismatch.pem")
        ),
        format!(
            "{}: tls.certificates[1].cert: found {} expired at ",
            at(&cfg, "certs/expired.pem"),
            path("certs/expired.pem")
        ),
        format!(
            "{}: tls.certificates[2].key: found {} unreadable (No such file or directory (os error 2)), expected a readable PEM file",
            at(&cfg, "certs/missing.key"),
            path("certs/missing.key")
        ),
        format!(
            "{}: tls.certificates[3].cert: found no certificate in {}, expected a PEM certificate chain",
            at(&cfg, "certs/garbage.pem"),
            path("certs/garbage.pem")
        ),
    ];
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (line, want) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(want.as_str()),
            "\n  got: {line}\n want: {want}..."
        );
    }
}

#[test]
fn a_gateway_with_a_bad_pair_does_not_start() {
    let up = Upstream::start("app");
    let ca = TestCa::new("dyegate test CA");
    let cfg = GatewayConfig::new(&routes(&up));
    let shop = ca.leaf(&[SHOP]);
    write_pair(&cfg, "shop", &shop);
    cfg.write("certs/shop.key", &ca.leaf(&[SHOP]).key_pem);
    let cfg = config_with(cfg, &["shop"]);
    let out = cfg.run_to_exit();
    assert!(!out.timed_out, "{out}");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains(": tls.certificates[0].key: found a key in ")
            && out
                .stderr
                .contains("dyegate: not started: unusable certificates in tls:"),
        "{out}"
    );
}

#[tokio::test]
async fn status_and_the_expiry_gauge_describe_the_served_certificates() {
    let ca = TestCa::new("dyegate test CA");
    let shop = ca.leaf(&[SHOP, "www.example.com"]);
    let wildcard = ca.leaf(&["*.example.com"]);
    let site = Site::start(ca, &[("shop", &shop), ("wildcard", &wildcard)], "", "").await;
    // A pair valid for 30 days more, written over the wildcard one.
    let (cert, key) = self_signed_valid(&["*.example.com"], -DAY, 30 * DAY);
    site.cfg().write_and_rename("certs/wildcard.key", &key);
    site.cfg().write_and_rename("certs/wildcard.pem", &cert);
    let status = site
        .gw
        .wait_for_status(std::time::Duration::from_secs(10), "the 30-day pair", |s| {
            s["tls"]["certificates"][1]["seconds_left"]
                .as_i64()
                .is_some_and(|left| left < 31 * DAY)
        })
        .await;
    let tls = &status["tls"];
    assert_eq!(tls["listen"][0], site.tls.to_string(), "{tls:#}");
    assert_eq!(tls["min_version"], "1.2");
    assert_eq!(tls["h2"], true);
    let first = &tls["certificates"][0];
    assert_eq!(first["name"], SHOP);
    assert_eq!(first["names"], serde_json::json!([SHOP, "www.example.com"]));
    assert_eq!(first["default"], true);
    assert_eq!(
        first["cert"],
        site.cfg().path("certs/shop.pem").display().to_string()
    );
    assert_eq!(tls["certificates"][1]["default"], false);
    assert_eq!(tls["certificates"][1]["name"], "*.example.com");
    assert!(tls["last_error"].is_null(), "{tls:#}");

    let scrape = site.gw.metrics().await;
    let left = scrape.value(
        "dyegate_tls_certificate_expiry_seconds",
        &[("name", "*.example.com")],
    );
    assert!(
        (30.0 * DAY as f64 - left).abs() < 600.0,
        "about 30 days left, got {left}: {}",
        scrape.dump("dyegate_tls_certificate_expiry_seconds")
    );
    assert!(scrape.value("dyegate_tls_certificate_expiry_seconds", &[("name", SHOP)]) > 0.0);
    assert_eq!(
        scrape.value(
            "dyegate_tls_certificate_reloads_total",
            &[("result", "success")]
        ),
        1.0
    );
}
