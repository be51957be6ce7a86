//! `upstreams.NAME.protocol` and `upstreams.NAME.tls`: what they compile to, and every bad
//! combination pinned to its whole error line.

use crate::config::routes_from_text;
use crate::routing::{Group, Protocol};
use std::path::Path;

/// The prepared peers of a group of `IP:PORT` targets.
fn peers_of(g: &Group) -> &[pingora::upstreams::peer::HttpPeer] {
    g.fixed_members().expect("fixed targets").peers()
}

/// routes.yaml in `dir` (or a bare name) with group `a` = `fields` and one route.
fn text(fields: &str) -> String {
    format!("upstreams:\n  a: {{ targets: [\"127.0.0.1:9001\", \"127.0.0.1:9002\"], {fields} }}\nroutes:\n  - name: r\n    split: [{{ upstream: a, weight: 1 }}]\n")
}

fn errors_in(file: &str, fields: &str) -> Vec<String> {
    match routes_from_text(file, text(fields).into_bytes(), None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn errors(fields: &str) -> Vec<String> {
    errors_in("routes.yaml", fields)
}

#[test]
fn protocols_compile_to_prepared_peers() {
    let loaded =
        routes_from_text("routes.yaml", text("protocol: h2c").into_bytes(), None).expect("valid");
    let g = &loaded.table.groups()[0];
    assert_eq!(g.transport.protocol, Protocol::H2c);
    assert!(!g.transport.tls);
    let peers = peers_of(g);
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[1]._address.to_string(), "127.0.0.1:9002");
    assert!(!peers[0].is_tls());
    assert_eq!(peers[0].options.alpn, pingora::protocols::ALPN::H2);

    let loaded = routes_from_text(
        "routes.yaml",
        text("protocol: h2, tls: { sni: orders.internal }").into_bytes(),
        None,
    )
    .expect("valid");
    let g = &loaded.table.groups()[0];
    assert_eq!(g.transport.protocol, Protocol::H2);
    let p = &peers_of(g)[0];
    assert!(p.is_tls());
    assert_eq!(p.sni, "orders.internal");
    assert!(p.options.verify_cert && p.options.verify_hostname);
    assert_eq!(p.options.alpn, pingora::protocols::ALPN::H2);

    // h2 alone is TLS with verification; without `sni`, the target's address is checked.
    let loaded =
        routes_from_text("routes.yaml", text("protocol: h2").into_bytes(), None).expect("valid");
    let p = &peers_of(&loaded.table.groups()[0])[1];
    assert!(p.is_tls());
    assert_eq!(p.sni, "127.0.0.1");
    assert!(p.options.verify_cert);

    // h1 over TLS, verification off.
    let loaded = routes_from_text(
        "routes.yaml",
        text("tls: { sni: a.internal, verify: false }").into_bytes(),
        None,
    )
    .expect("valid");
    let g = &loaded.table.groups()[0];
    assert_eq!(g.transport.protocol, Protocol::H1);
    let p = &peers_of(g)[0];
    assert!(p.is_tls() && !p.options.verify_cert && !p.options.verify_hostname);
    assert_eq!(p.options.alpn, pingora::protocols::ALPN::H1);

    // The default: cleartext HTTP/1.1.
    let plain = "upstreams:\n  a: { targets: [\"127.0.0.1:9001\"] }\nroutes:\n  - { name: r, split: [{ upstream: a, weight: 1 }] }\n";
    let loaded = routes_from_text("routes.yaml", plain.into(), None).expect("valid");
    let g = &loaded.table.groups()[0];
    assert_eq!(g.transport.protocol, Protocol::H1);
    assert!(!peers_of(g)[0].is_tls());
}

#[test]
fn bad_combinations_are_located() {
    let cases = [
        "protocol: h3",
        "protocol: h2c, tls: { sni: a.internal }",
        "tls: { sni: \"not a name!\" }",
        "tls: { sny: a.internal }",
        "tls: { verify: false, ca: ca.pem }",
        "protocol: h2c, health: { http: { path: /healthz } }",
        "tls: { sni: a.internal }, health: { http: {} }",
        "protocol: h2c, health: { tcp: true }",
    ];
    let got: Vec<Vec<String>> = cases.iter().map(|c| errors(c)).collect();
    let want: Vec<Vec<&str>> = vec![
        vec!["routes.yaml:2:65: upstreams.a.protocol: found \"h3\", expected one of `h1`, `h2`, `h2c`"],
        vec!["routes.yaml:2:75: upstreams.a.tls: found `tls` with `protocol: h2c` (HTTP/2 in cleartext), expected no `tls`, or `protocol: h2` for HTTP/2 over TLS"],
        vec!["routes.yaml:2:67: upstreams.a.tls.sni: found \"not a name!\", expected a server name such as orders.internal"],
        vec!["routes.yaml:2:62: upstreams.a.tls.sny: found unknown field `sny`, expected one of `sni`, `verify`, `ca`"],
        vec!["routes.yaml:2:81: upstreams.a.tls.ca: found `ca` with `verify: false` (nothing would be checked against it), expected `verify: true` or no `ca`"],
        vec!["routes.yaml:2:86: upstreams.a.health.http: found an HTTP check on an upstream spoken to with `protocol: h2c`, expected `health: { tcp: true }` (HTTP checks are HTTP/1.1 in cleartext)"],
        vec!["routes.yaml:2:97: upstreams.a.health.http: found an HTTP check on an upstream spoken to with `protocol: h1` over TLS, expected `health: { tcp: true }` (HTTP checks are HTTP/1.1 in cleartext)"],
        vec![],
    ];
    assert_eq!(got, want);
}

#[test]
fn the_ca_file_is_read_relative_to_the_routes_file_and_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let routes = dir.path().join("routes.yaml");
    let file = routes.display().to_string();
    let d = dir.path().display();

    assert_eq!(
        errors_in(&file, "tls: { ca: certs/ca.pem }"),
        vec![format!("{file}:2:66: upstreams.a.tls.ca: found \"certs/ca.pem\", which cannot be read ({d}/certs/ca.pem: No such file or directory (os error 2)), expected a PEM file of CA certificates")]
    );
    std::fs::create_dir(dir.path().join("certs")).expect("certs dir");
    std::fs::write(dir.path().join("certs/ca.pem"), "hello\n").expect("write");
    assert_eq!(
        errors_in(&file, "tls: { ca: certs/ca.pem }"),
        vec![format!("{file}:2:66: upstreams.a.tls.ca: found \"certs/ca.pem\" with no certificate in it, expected a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)")]
    );
    // PEM armour around bytes that are no certificate.
    std::fs::write(
        dir.path().join("certs/ca.pem"),
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let got = errors_in(&file, "tls: { ca: certs/ca.pem }");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!("{file}:2:66: upstreams.a.tls.ca: found \"certs/ca.pem\" whose certificate 1 is not usable (")),
        "{got:?}"
    );

    // A real CA: every target's peer trusts it, and pooled connections are kept apart by it.
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    let ca = params.self_signed(&key).expect("CA");
    std::fs::write(dir.path().join("certs/ca.pem"), ca.pem()).expect("write");
    let loaded = routes_from_text(
        &file,
        text("tls: { sni: a.internal, ca: certs/ca.pem }").into_bytes(),
        None,
    )
    .expect("valid");
    let peers = peers_of(&loaded.table.groups()[0]);
    for p in peers {
        assert_eq!(p.options.ca.as_ref().map(|c| c.len()), Some(1));
        assert_ne!(p.group_key, 0);
    }
    // The same text loaded again reads the file again (it may have changed).
    let again = routes_from_text(
        &file,
        text("tls: { sni: a.internal, ca: certs/ca.pem }").into_bytes(),
        loaded.reuse.as_ref(),
    )
    .expect("valid");
    assert!(!std::sync::Arc::ptr_eq(
        &again.table.groups()[0],
        &loaded.table.groups()[0]
    ));
    assert!(Path::new(&file).parent().is_some());
}
