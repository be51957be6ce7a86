//! gateway.yaml's `tls:` the HTTPS listeners and their certificates, checked and with every
//! path resolved against gateway.yaml's directory. The certificate files themselves are read by
//! [`crate::tls`] (at startup, by `dyegate check`, and on every reload).

use super::listen::{listen_settings, ProxyProtocolListener};
use super::tls_session::{
    hsts_header, session_tickets, HstsConfig, SessionTickets, SessionTicketsConfig,
};
use crate::config::error::Issue;
use crate::config::range::Millis;
use schemars::JsonSchema;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `tls:` as written in gateway.yaml (defaults in the field docs).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// HTTPS listeners, `IP:PORT` (not also in `listen` or `admin.listen`).
    pub listen: Vec<super::listen::ListenConfig>,
    /// Certificate chains (PEM) and their keys, relative to gateway.yaml's directory; the
    /// names each one serves come from its subjectAltName DNS entries.
    pub certificates: Vec<CertificateConfig>,
    /// The `cert` of the entry served to clients without SNI or with a name no certificate
    /// has [the first entry's].
    #[serde(default)]
    pub default: Option<String>,
    /// Lowest TLS version accepted: "1.2" or "1.3" ["1.2"].
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Offer HTTP/2 by ALPN (h2, then http/1.1); false: HTTP/1.1 only [true].
    #[serde(default = "default_true")]
    pub h2: bool,
    /// From accept to the end of the TLS handshake; past it the connection is closed
    /// [10000].
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: Millis,
    /// Stateless session resumption with tickets [on, keys made per process].
    #[serde(default)]
    pub session_tickets: SessionTicketsConfig,
    /// A `Strict-Transport-Security` header on HTTPS answers; absent = none.
    #[serde(default)]
    pub hsts: Option<HstsConfig>,
}

/// `tls.certificates[i]`: one PEM chain (leaf first) and its private key.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert: String,
    /// The private key of the leaf, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

/// `tls.min_version`.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_handshake_timeout_ms() -> Millis {
    Millis(10_000)
}

/// One certificate entry with its files resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The HTTPS listeners the process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamTls {
    pub listen: Vec<SocketAddr>,
    /// In file order; never empty.
    pub certificates: Vec<CertificatePaths>,
    /// Index into `certificates` of the default certificate.
    pub default: usize,
    pub min_version: TlsVersion,
    pub h2: bool,
    pub handshake_timeout: Duration,
    /// `session_tickets`: on or off, the key files (none: generated keys), the lifetime.
    pub session_tickets: SessionTickets,
    /// `hsts`: the `Strict-Transport-Security` value of HTTPS answers.
    pub hsts: Option<http::HeaderValue>,
}

impl DownstreamTls {
    /// The port HTTPS is reached on, for `https_redirect`: the first listener's.
    pub fn port(&self) -> Option<u16> {
        self.listen.first().map(SocketAddr::port)
    }
}

/// Checks `tls:` against the other listeners and resolves its paths against `base`. The
/// certificate files are not read here. Listeners with `proxy_protocol` are appended to
/// `proxied`.
pub fn tls_settings(
    tls: &TlsConfig,
    plain: &[SocketAddr],
    admin: SocketAddr,
    base: &Path,
    proxied: &mut Vec<ProxyProtocolListener>,
    issues: &mut Vec<Issue>,
) -> DownstreamTls {
    let mut listen = Vec::new();
    let mut mine = Vec::new();
    let addrs = listen_settings(&tls.listen, "tls.listen", "0.0.0.0:8443", &mut mine, issues);
    for (i, a) in addrs {
        let path = format!("tls.listen[{i}]");
        if plain.contains(&a) {
            issues.push(Issue::new(
                path,
                format!("found {a}, also a plain listener in listen, expected a separate address"),
            ));
        } else if a == admin {
            issues.push(Issue::new(
                path,
                format!("found {a}, also admin.listen, expected a separate address"),
            ));
        } else if listen.contains(&a) {
            issues.push(Issue::new(
                path,
                format!("found {a} twice, expected each address once"),
            ));
        } else {
            listen.push(a);
        }
    }
    proxied.extend(mine.into_iter().filter(|p| listen.contains(&p.addr)));
    if tls.listen.is_empty() {
        issues.push(Issue::new(
            "tls.listen",
            "found an empty list, expected at least one listen address",
        ));
    }
    if tls.certificates.is_empty() {
        issues.push(Issue::new(
            "tls.certificates",
            "found an empty list, expected at least one { cert, key } pair",
        ));
    }
    let resolve = |p: &str| super::gateway::normalize(&base.join(p.trim()));
    let certificates: Vec<CertificatePaths> = (tls.certificates.iter())
        .map(|c| CertificatePaths {
            cert: resolve(&c.cert),
            key: resolve(&c.key),
        })
        .collect();
    let default = match &tls.default {
        None => 0,
        Some(d) => {
            let wanted = resolve(d);
            match certificates.iter().position(|c| c.cert == wanted) {
                Some(i) => i,
                None => {
                    let certs: Vec<&str> =
                        tls.certificates.iter().map(|c| c.cert.as_str()).collect();
                    issues.push(Issue::new(
                        "tls.default",
                        format!(
                            "found {d:?}, expected the cert of one of tls.certificates ({})",
                            certs.join(", ")
                        ),
                    ));
                    0
                }
            }
        }
    };
    DownstreamTls {
        listen,
        certificates,
        default,
        min_version: tls.min_version,
        h2: tls.h2,
        handshake_timeout: Duration::from_millis(tls.handshake_timeout_ms.0),
        session_tickets: session_tickets(&tls.session_tickets, resolve, issues),
        hsts: tls.hsts.as_ref().map(hsts_header),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::settings::tests_files::load_gateway as load;

    const BASE: &str = "listen: [\"127.0.0.1:8080\"]\n";

    #[test]
    fn defaults_are_the_documented_ones() {
        let gw = load(&format!(
            "{BASE}tls:\n  listen: [\"127.0.0.1:8443\"]\n  certificates:\n    - {{ cert: certs/a.pem, key: certs/a.key }}\n    - {{ cert: certs/b.pem, key: certs/b.key }}\n"
        ))
        .expect("valid");
        let tls = gw.tls.expect("tls");
        assert_eq!(tls.listen, vec!["127.0.0.1:8443".parse().expect("addr")]);
        assert_eq!(tls.default, 0);
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        assert!(tls.h2);
        assert_eq!(tls.handshake_timeout, Duration::from_millis(10_000));
        assert!(tls.certificates[1].cert.ends_with("certs/b.pem"));
        assert!(tls.certificates[1].cert.is_absolute());
        assert!(tls.certificates[1].key.ends_with("certs/b.key"));
    }

    #[test]
    fn every_field_is_read() {
        let gw = load(&format!(
            "{BASE}tls:\n  listen: [\"127.0.0.1:8443\", \"127.0.0.1:9443\"]\n  certificates:\n    - {{ cert: a.pem, key: a.key }}\n    - {{ cert: ./b.pem, key: b.key }}\n  default: b.pem\n  min_version: \"1.3\"\n  h2: false\n  handshake_timeout_ms: 250\n"
        ))
        .expect("valid");
        let tls = gw.tls.expect("tls");
        assert_eq!(tls.listen.len(), 2);
        assert_eq!(tls.port(), Some(8443));
        assert_eq!(tls.default, 1);
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert!(!tls.h2);
        assert_eq!(tls.handshake_timeout, Duration::from_millis(250));
        // Unquoted, YAML reads a number; the same version.
        let gw = load(&format!(
            "{BASE}tls: {{ listen: [\"127.0.0.1:8443\"], certificates: [{{ cert: a.pem, key: a.key }}], min_version: 1.3 }}\n"
        ))
        .expect("valid");
        assert_eq!(gw.tls.expect("tls").min_version, TlsVersion::Tls13);
    }

    #[test]
    fn bad_tls_sections_are_located() {
        let one = "  certificates: [{ cert: a.pem, key: a.key }]\n";
        assert_eq!(
            load(&format!("{BASE}tls:\n  listen: [\"127.0.0.1:8080\"]\n{one}")).err().as_deref(),
            Some("gateway.yaml:3:12: tls.listen[0]: found 127.0.0.1:8080, also a plain listener in listen, expected a separate address")
        );
        assert_eq!(
            load(&format!("{BASE}tls:\n  listen: [\"nowhere\"]\n{one}")).err().as_deref(),
            Some("gateway.yaml:3:12: tls.listen[0]: found \"nowhere\", expected an IP:PORT listen address such as 0.0.0.0:8443")
        );
        assert_eq!(
            load(&format!("{BASE}tls:\n  listen: [\"127.0.0.1:8443\"]\n{one}  default: c.pem\n")).err().as_deref(),
            Some("gateway.yaml:5:12: tls.default: found \"c.pem\", expected the cert of one of tls.certificates (a.pem)")
        );
        assert_eq!(
            load(&format!("{BASE}tls:\n  listen: [\"127.0.0.1:8443\"]\n  certificates: []\n")).err().as_deref(),
            Some("gateway.yaml:4:17: tls.certificates: found an empty list, expected at least one { cert, key } pair")
        );
        assert_eq!(
            load(&format!(
                "{BASE}tls:\n  listen: [\"127.0.0.1:8443\"]\n{one}  min_version: \"1.1\"\n"
            ))
            .err()
            .as_deref(),
            Some("gateway.yaml:5:16: tls.min_version: found \"1.1\", expected one of `1.2`, `1.3`")
        );
        assert_eq!(
            load(&format!(
                "{BASE}tls:\n  listen: [\"127.0.0.1:8443\"]\n  certificates: [{{ cert: a.pem }}]\n"
            ))
            .err()
            .as_deref(),
            Some("gateway.yaml:4:18: tls.certificates[0]: missing required field `key`")
        );
        assert_eq!(
            load(&format!("{BASE}tls:\n  listen: [\"127.0.0.1:8443\"]\n{one}  h2c: true\n")).err().as_deref(),
            Some("gateway.yaml:5:3: tls.h2c: found unknown field `h2c`, expected one of `listen`, `certificates`, `default`, `min_version`, `h2`, `handshake_timeout_ms`, `session_tickets`, `hsts`")
        );
    }
}
