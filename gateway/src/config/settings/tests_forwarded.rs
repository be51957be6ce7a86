//! gateway.yaml's `forwarded:` and the PROXY protocol listeners (`listen`, `tls.listen`):
//! defaults, every field read, located errors pinned whole.

use crate::config::settings::tests_files::load_gateway as load;
use dyegate_plugins::forwarded::HeaderSet;

const TLS: &str = "  certificates: [{ cert: a.pem, key: a.key }]\n";

#[test]
fn defaults_trust_nobody_and_write_the_x_forwarded_trio() {
    let gw = load("listen: [\"127.0.0.1:8080\"]\n").expect("valid");
    assert!(gw.forwarded.trusted().is_empty());
    assert_eq!(
        gw.forwarded.headers(),
        HeaderSet {
            x_forwarded: true,
            forwarded: false,
            x_real_ip: false
        }
    );
    assert!(gw.proxy_protocol.is_empty());
    assert_eq!(gw.listen, vec!["127.0.0.1:8080".parse().expect("addr")]);
}

#[test]
fn every_field_is_read() {
    let gw = load(
        "listen:\n  - \"127.0.0.1:8080\"\n  - { addr: \"127.0.0.1:8081\", proxy_protocol: true }\n  - { addr: \"[::1]:8082\", proxy_protocol: true, proxy_protocol_sources: [10.0.0.0/8, 192.0.2.7] }\n  - { addr: \"127.0.0.1:8083\" }\n\
         tls:\n  listen: [{ addr: \"127.0.0.1:8443\", proxy_protocol: true }, \"127.0.0.1:9443\"]\n{TLS}\
         forwarded:\n  trusted_sources: [10.0.0.0/8, \"::1\"]\n  headers: [forwarded, x-real-ip, x-forwarded]\n"
            .replace("{TLS}", TLS)
            .as_str(),
    )
    .expect("valid");
    assert_eq!(gw.listen.len(), 4);
    let proxied: Vec<(String, Option<Vec<String>>)> = (gw.proxy_protocol.iter())
        .map(|p| {
            (
                p.addr.to_string(),
                (p.sources.as_ref()).map(|s| s.iter().map(ToString::to_string).collect()),
            )
        })
        .collect();
    assert_eq!(
        proxied,
        vec![
            ("127.0.0.1:8081".to_string(), None),
            (
                "[::1]:8082".to_string(),
                Some(vec!["10.0.0.0/8".to_string(), "192.0.2.7/32".to_string()])
            ),
            ("127.0.0.1:8443".to_string(), None),
        ]
    );
    assert_eq!(gw.tls.expect("tls").listen.len(), 2);
    let trusted: Vec<String> = gw
        .forwarded
        .trusted()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(trusted, vec!["10.0.0.0/8", "::1/128"]);
    assert_eq!(
        gw.forwarded.headers(),
        HeaderSet {
            x_forwarded: true,
            forwarded: true,
            x_real_ip: true
        }
    );
    let none = load("listen: [\"127.0.0.1:8080\"]\nforwarded: { headers: [] }\n").expect("valid");
    assert_eq!(none.forwarded.headers(), HeaderSet::default());
}

#[test]
fn bad_forwarded_sections_are_located() {
    let base = "listen: [\"127.0.0.1:8080\"]\n";
    for (yaml, want) in [
        (
            "forwarded: { trusted_sources: [10.0.0.0/8, 10.0.0.0/33] }\n",
            "gateway.yaml:2:44: forwarded.trusted_sources[1]: found \"10.0.0.0/33\", expected an IP network such as 10.0.0.0/8 or an IP address",
        ),
        (
            "forwarded: { headers: [x-forwarded-for] }\n",
            "gateway.yaml:2:24: forwarded.headers[0]: found \"x-forwarded-for\", expected one of `x-forwarded`, `forwarded`, `x-real-ip`",
        ),
        (
            "forwarded: { headers: [forwarded, forwarded] }\n",
            "gateway.yaml:2:35: forwarded.headers[1]: found forwarded twice, expected each at most once",
        ),
        (
            "forwarded: { trusted: [10.0.0.0/8] }\n",
            "gateway.yaml:2:14: forwarded.trusted: found unknown field `trusted`, expected one of `trusted_sources`, `headers`",
        ),
    ] {
        assert_eq!(
            load(&format!("{base}{yaml}")).err().as_deref(),
            Some(want),
            "{yaml}"
        );
    }
}

#[test]
fn bad_listeners_are_located() {
    for (yaml, want) in [
        (
            "listen: [{ addr: \"127.0.0.1:8080\", proxy_protocol: yes }]\n",
            "gateway.yaml:1:52: listen[0].proxy_protocol: found \"yes\", expected a boolean",
        ),
        (
            "listen: [{ addr: nowhere, proxy_protocol: true }]\n",
            "gateway.yaml:1:18: listen[0].addr: found \"nowhere\", expected an IP:PORT listen address such as 0.0.0.0:8080",
        ),
        (
            "listen: [nowhere]\n",
            "gateway.yaml:1:10: listen[0]: found \"nowhere\", expected an IP:PORT listen address such as 0.0.0.0:8080",
        ),
        (
            "listen: [{ addr: \"127.0.0.1:8080\", proxy: true }]\n",
            "gateway.yaml:1:36: listen[0].proxy: found unknown field `proxy`, expected one of `addr`, `proxy_protocol`, `proxy_protocol_sources`",
        ),
        (
            "listen: [{ addr: \"127.0.0.1:8080\", proxy_protocol_sources: [10.0.0.0/8] }]\n",
            "gateway.yaml:1:60: listen[0].proxy_protocol_sources: found proxy_protocol_sources on a listener without proxy_protocol: true, expected proxy_protocol: true beside it",
        ),
        (
            "listen: [{ addr: \"127.0.0.1:8080\", proxy_protocol: true, proxy_protocol_sources: [] }]\n",
            "gateway.yaml:1:82: listen[0].proxy_protocol_sources: found an empty list, expected at least one network (omit the field to take the header from any peer)",
        ),
        (
            "listen: [{ addr: \"127.0.0.1:8080\", proxy_protocol: true, proxy_protocol_sources: [lb] }]\n",
            "gateway.yaml:1:83: listen[0].proxy_protocol_sources[0]: found \"lb\", expected an IP network such as 10.0.0.0/8 or an IP address",
        ),
        (
            "listen: [\"127.0.0.1:8080\"]\ntls:\n  listen: [{ addr: \"127.0.0.1:8080\", proxy_protocol: true }]\n  certificates: [{ cert: a.pem, key: a.key }]\n",
            "gateway.yaml:3:12: tls.listen[0]: found 127.0.0.1:8080, also a plain listener in listen, expected a separate address",
        ),
        (
            "listen: [\"127.0.0.1:8080\"]\ntls:\n  listen: [{ addr: \"127.0.0.1:8443\", proxy_protocol: 1 }]\n  certificates: [{ cert: a.pem, key: a.key }]\n",
            "gateway.yaml:3:54: tls.listen[0].proxy_protocol: found 1, expected a boolean",
        ),
    ] {
        assert_eq!(load(yaml).err().as_deref(), Some(want), "{yaml}");
    }
}
