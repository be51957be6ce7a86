//! `upstreams.NAME.protocol` and `upstreams.NAME.tls` to a group's [`Transport`]: the template
//! of every target's prepared Pingora peer (TLS, SNI, verification, CA, ALPN), so that an
//! attempt only clones its target's peer. The CA file is read here, on every load of the routes file: a missing or broken file
//! fails that load with a located error and the running table keeps serving.

use super::model::UpstreamConfig;
use super::upstream_transport::{UpstreamProtocol, UpstreamTlsConfig};
use crate::config::error::Issue;
use crate::routing::{PeerTemplate, Protocol, Transport};
use pingora::protocols::ALPN;
use pingora::tls::{CertificateDer, RootCertStore, ServerName};
use pingora::upstreams::peer::PeerOptions;
use pingora::utils::tls::WrappedX509;
use rustls_pki_types::pem::PemObject;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Concurrent streams one HTTP/2 connection to a target carries before another is opened
/// (Pingora's default is 1: a connection per request in flight).
const H2_STREAMS_PER_CONNECTION: usize = 100;

/// Where relative paths of a routes text (`tls.ca`) are resolved: the directory of the file it
/// was read from, when `file` names one; else the working directory (tables from etcd, versions
/// compiled again from the history).
pub fn base_dir(file: &str) -> PathBuf {
    match Path::new(file).parent() {
        Some(dir) if !dir.as_os_str().is_empty() && dir.is_dir() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether a group's compiled form must be built again even when its text is unchanged: its CA
/// file may have changed on disk since.
pub fn reads_files(up: &UpstreamConfig) -> bool {
    up.tls.as_ref().is_some_and(|t| t.ca.is_some())
}

/// The group's transport; `None` (with issues) when `protocol` and `tls` do not go together,
/// the SNI is not a server name, or the CA file cannot be used.
pub fn transport(
    up: &UpstreamConfig,
    base: &Path,
    path: &dyn Fn() -> String,
    issues: &mut Vec<Issue>,
) -> Option<Transport> {
    let protocol = match up.protocol {
        UpstreamProtocol::H1 => Protocol::H1,
        UpstreamProtocol::H2 => Protocol::H2,
        UpstreamProtocol::H2c => Protocol::H2c,
    };
    let before = issues.len();
    let tls = match (protocol, &up.tls) {
        (Protocol::H2c, Some(_)) => {
            issues.push(Issue::new(
                format!("{}.tls", path()),
                "found `tls` with `protocol: h2c` (HTTP/2 in cleartext), expected no `tls`, or `protocol: h2` for HTTP/2 over TLS",
            ));
            None
        }
        (Protocol::H2, None) => Some(UpstreamTlsConfig::default()),
        (_, tls) => tls.clone(),
    };
    if let Some(h) = &up.health {
        if h.http.is_some() && (tls.is_some() || protocol.is_h2()) {
            issues.push(Issue::new(
                format!("{}.health.http", path()),
                format!(
                    "found an HTTP check on an upstream spoken to with `protocol: {}`{}, expected `health: {{ tcp: true }}` (HTTP checks are HTTP/1.1 in cleartext)",
                    up.protocol.as_str(),
                    if tls.is_some() { " over TLS" } else { "" }
                ),
            ));
        }
    }
    let settings = match &tls {
        Some(t) => Some(tls_settings(t, base, path, issues)?),
        None => None,
    };
    if issues.len() > before {
        return None;
    }
    let template = template(protocol, settings.as_ref());
    Some(Transport::new(protocol, settings.is_some(), template))
}

/// `tls`, checked: the SNI (if given), the verification switch and the CA certificates read.
struct TlsSettings {
    sni: Option<String>,
    verify: bool,
    ca: Option<Arc<[WrappedX509]>>,
    /// Tells apart pooled connections verified against different CAs (Pingora's connection
    /// reuse key does not include the CA).
    ca_key: u64,
}

fn tls_settings(
    t: &UpstreamTlsConfig,
    base: &Path,
    path: &dyn Fn() -> String,
    issues: &mut Vec<Issue>,
) -> Option<TlsSettings> {
    let before = issues.len();
    let sni = match t.sni.as_deref().map(str::trim) {
        None => None,
        Some(s) if !s.is_empty() && ServerName::try_from(s).is_ok() => Some(s.to_string()),
        Some(s) => {
            issues.push(Issue::new(
                format!("{}.tls.sni", path()),
                format!("found {s:?}, expected a server name such as orders.internal"),
            ));
            None
        }
    };
    if !t.verify && t.ca.is_some() {
        issues.push(Issue::new(
            format!("{}.tls.ca", path()),
            "found `ca` with `verify: false` (nothing would be checked against it), expected `verify: true` or no `ca`",
        ));
    }
    let ca = match &t.ca {
        Some(file) if t.verify => match read_ca(base, file) {
            Ok(ca) => Some(ca),
            Err(msg) => {
                issues.push(Issue::new(format!("{}.tls.ca", path()), msg));
                None
            }
        },
        _ => None,
    };
    if issues.len() > before {
        return None;
    }
    let ca_key = ca.as_ref().map_or(0, |(_, key)| *key);
    Some(TlsSettings {
        sni,
        verify: t.verify,
        ca: ca.map(|(certs, _)| certs),
        ca_key,
    })
}

/// The CA certificates of a PEM file, each checked as X.509 and as a trust anchor, and a hash
/// of them.
fn read_ca(base: &Path, file: &str) -> Result<(Arc<[WrappedX509]>, u64), String> {
    let full = base.join(file);
    let pem = std::fs::read(&full).map_err(|e| {
        format!(
            "found {file:?}, which cannot be read ({}: {e}), expected a PEM file of CA certificates",
            full.display()
        )
    })?;
    let mut certs = Vec::new();
    let mut store = RootCertStore::empty();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (i, der) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let der = der.map_err(|e| {
            format!("found {file:?} with PEM that does not decode ({e}), expected a PEM file of CA certificates")
        })?;
        let n = i + 1;
        let bad = |why: String| {
            format!("found {file:?} whose certificate {n} is not usable ({why}), expected a PEM file of CA certificates")
        };
        let raw = der.as_ref().to_vec();
        let cert = WrappedX509::try_new(raw, |raw| X509Certificate::from_der(raw).map(|(_, c)| c))
            .map_err(|e| bad(e.to_string()))?;
        store.add(der.clone()).map_err(|e| bad(e.to_string()))?;
        der.as_ref().hash(&mut hasher);
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!(
            "found {file:?} with no certificate in it, expected a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok((certs.into(), hasher.finish().max(1)))
}

/// What every target's peer shares; the SNI of a target without `tls.sni` is its DNS name or
/// its IP address (`Transport::peer_for`).
fn template(protocol: Protocol, tls: Option<&TlsSettings>) -> PeerTemplate {
    let mut o = PeerOptions::new();
    o.alpn = match protocol {
        Protocol::H1 => ALPN::H1,
        Protocol::H2 | Protocol::H2c => ALPN::H2,
    };
    if protocol.is_h2() {
        o.max_h2_streams = H2_STREAMS_PER_CONNECTION;
    }
    let mut template = PeerTemplate {
        sni: None,
        options: o,
        group_key: 0,
    };
    if let Some(t) = tls {
        template.sni = t.sni.clone();
        template.options.verify_cert = t.verify;
        template.options.verify_hostname = t.verify;
        template.options.ca = t.ca.clone();
        template.group_key = t.ca_key;
    }
    template
}
