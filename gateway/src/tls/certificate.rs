//! One `tls.certificates` entry read from disk and checked: the chain parses, the key parses and
//! belongs to the leaf, the leaf is not expired; its DNS names and expiry are read for SNI, the
//! status and the metrics.

use crate::config::settings::tls::CertificatePaths;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest certificate or key file read (a chain of a few certificates is a few KiB).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// `dyegate check` warns about a certificate that expires sooner than this.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// A certificate entry, loaded and checked.
#[derive(Debug)]
pub struct Certificate {
    pub paths: CertificatePaths,
    /// subjectAltName DNS entries, lowercase, in certificate order (`*.example.com` kept as is).
    pub names: Vec<String>,
    /// The leaf's notAfter, seconds since the epoch.
    pub not_after: i64,
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
}

/// Which file of an entry an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    Cert,
    Key,
}

impl File {
    /// The field of `tls.certificates[i]` that names the file.
    pub fn field(self) -> &'static str {
        match self {
            File::Cert => "cert",
            File::Key => "key",
        }
    }
}

/// Why an entry cannot be served: the file at fault and what is wrong, naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: File,
    pub message: String,
}

fn fail<T>(file: File, message: String) -> Result<T, LoadError> {
    Err(LoadError { file, message })
}

impl Certificate {
    /// Reads and checks both files.
    pub fn load(paths: &CertificatePaths, now: SystemTime) -> Result<Certificate, LoadError> {
        let cert_file = paths.cert.display();
        let key_file = paths.key.display();
        let chain_pem = read(&paths.cert).or_else(|e| fail(File::Cert, e))?;
        let chain: Vec<CertificateDer<'static>> =
            match CertificateDer::pem_slice_iter(&chain_pem).collect() {
                Ok(chain) => chain,
                Err(e) => {
                    return fail(
                        File::Cert,
                        format!(
                    "found {cert_file} unreadable as PEM ({e}), expected a PEM certificate chain"
                ),
                    )
                }
            };
        let Some(leaf) = chain.first() else {
            return fail(
                File::Cert,
                format!("found no certificate in {cert_file}, expected a PEM certificate chain"),
            );
        };
        let (names, not_before, not_after) = match leaf_facts(leaf) {
            Ok(facts) => facts,
            Err(e) => {
                return fail(
                    File::Cert,
                    format!("found a first certificate in {cert_file} that does not parse ({e}), expected an X.509 certificate"),
                )
            }
        };
        let key_pem = read(&paths.key).or_else(|e| fail(File::Key, e))?;
        let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(k) => k,
            Err(e) => {
                return fail(
                    File::Key,
                    format!("found no private key in {key_file} ({e}), expected a PEM private key (PKCS#8, PKCS#1 or SEC1)"),
                )
            }
        };
        let signing = match super::crypto_provider().key_provider.load_private_key(key) {
            Ok(s) => s,
            Err(e) => {
                return fail(
                    File::Key,
                    format!("found an unusable private key in {key_file} ({e}), expected an RSA, ECDSA or Ed25519 key"),
                )
            }
        };
        let certified = CertifiedKey::new(chain, signing);
        if let Err(e) = certified.keys_match() {
            return fail(
                File::Key,
                format!("found a key in {key_file} that does not match the certificate in {cert_file} ({e}), expected the certificate's own key"),
            );
        }
        let now_secs = unix(now);
        if not_after <= now_secs {
            return fail(
                File::Cert,
                format!(
                    "found {cert_file} expired at {}, expected a certificate valid now",
                    rfc3339(not_after)
                ),
            );
        }
        if not_before > now_secs {
            return fail(
                File::Cert,
                format!(
                    "found {cert_file} not valid before {}, expected a certificate valid now",
                    rfc3339(not_before)
                ),
            );
        }
        Ok(Certificate {
            paths: paths.clone(),
            names,
            not_after,
            key: Arc::new(certified),
        })
    }

    /// The name the certificate goes by in the status and the metrics: its first DNS name, or
    /// its file name when it has none.
    pub fn name(&self) -> String {
        match self.names.first() {
            Some(n) => n.clone(),
            None => (self.paths.cert.file_name())
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
        }
    }

    /// Seconds until the leaf expires (negative once it has).
    pub fn seconds_left(&self, now: SystemTime) -> i64 {
        self.not_after - unix(now)
    }
}

/// Seconds since the epoch (0 before it).
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `2026-12-02T19:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| {
        format!(
            "found {} unreadable ({e}), expected a readable PEM file",
            path.display()
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "found {} larger than {MAX_FILE_BYTES} bytes, expected a PEM file",
            path.display()
        ));
    }
    Ok(bytes)
}

/// The leaf's DNS names (lowercase), notBefore and notAfter.
fn leaf_facts(der: &CertificateDer<'_>) -> Result<(Vec<String>, i64, i64), String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Some(san) = cert.subject_alternative_name().map_err(|e| e.to_string())? {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if !d.is_empty() && !names.contains(&d) {
                    names.push(d);
                }
            }
        }
    }
    let v = cert.validity();
    Ok((names, v.not_before.timestamp(), v.not_after.timestamp()))
}
