//! The compiled certificate set: which certificate a handshake gets for its SNI name. Exact
//! name first, then `*.domain` (one label, as browsers match), then the default. Immutable;
//! a reload builds a new one and swaps it whole.

use super::certificate::Certificate;
use std::collections::HashMap;
use std::sync::Arc;

/// The certificates of one load and the lookup built over their names.
#[derive(Debug)]
pub struct SniTable {
    /// In `tls.certificates` order.
    certificates: Vec<Arc<Certificate>>,
    /// Exact DNS name → index.
    exact: HashMap<String, usize>,
    /// `*.example.com` → index, keyed by `example.com`.
    wildcard: HashMap<String, usize>,
    default: usize,
}

impl SniTable {
    /// `default` indexes `certificates`, which is not empty (checked by the config). A name in
    /// two certificates goes to the first one.
    pub fn new(certificates: Vec<Certificate>, default: usize) -> SniTable {
        let certificates: Vec<Arc<Certificate>> = certificates.into_iter().map(Arc::new).collect();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (i, c) in certificates.iter().enumerate() {
            for name in &c.names {
                match name.strip_prefix("*.") {
                    Some(domain) => wildcard.entry(domain.to_string()).or_insert(i),
                    None => exact.entry(name.clone()).or_insert(i),
                };
            }
        }
        let default = default.min(certificates.len().saturating_sub(1));
        SniTable {
            certificates,
            exact,
            wildcard,
            default,
        }
    }

    /// The certificate for a client hello's server name (`None`: the client sent none).
    pub fn lookup(&self, sni: Option<&str>) -> Option<&Arc<Certificate>> {
        let i = sni
            .and_then(|name| self.index(name))
            .unwrap_or(self.default);
        self.certificates.get(i)
    }

    fn index(&self, name: &str) -> Option<usize> {
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(i) = self.exact.get(name) {
            return Some(*i);
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).copied()
    }

    pub fn certificates(&self) -> &[Arc<Certificate>] {
        &self.certificates
    }

    pub fn default_index(&self) -> usize {
        self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tls::CertificatePaths;
    use rustls::sign::CertifiedKey;

    /// A certificate entry with the given names; the key material is never used by lookups.
    fn cert(file: &str, names: &[&str]) -> Certificate {
        let key = super::super::test_key();
        Certificate {
            paths: CertificatePaths {
                cert: file.into(),
                key: format!("{file}.key").into(),
            },
            names: names.iter().map(|n| n.to_string()).collect(),
            not_after: 0,
            key: Arc::new(CertifiedKey::new(Vec::new(), key)),
        }
    }

    fn file_for(t: &SniTable, sni: Option<&str>) -> String {
        let c = t.lookup(sni).expect("a certificate");
        c.paths.cert.display().to_string()
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let t = SniTable::new(
            vec![
                cert("shop.pem", &["shop.example.com", "www.example.com"]),
                cert("wild.pem", &["*.example.com", "example.com"]),
                cert("api.pem", &["api.example.com"]),
            ],
            0,
        );
        assert_eq!(file_for(&t, Some("shop.example.com")), "shop.pem");
        assert_eq!(file_for(&t, Some("api.example.com")), "api.pem");
        assert_eq!(file_for(&t, Some("other.example.com")), "wild.pem");
        assert_eq!(file_for(&t, Some("example.com")), "wild.pem");
        assert_eq!(file_for(&t, Some("API.Example.COM")), "api.pem");
        assert_eq!(file_for(&t, Some("api.example.com.")), "api.pem");
        // One label only: a wildcard does not cover deeper names.
        assert_eq!(file_for(&t, Some("a.b.example.com")), "shop.pem");
        assert_eq!(file_for(&t, Some("unknown.test")), "shop.pem");
        assert_eq!(file_for(&t, None), "shop.pem");
    }

    #[test]
    fn the_default_is_configurable_and_the_first_claim_wins() {
        let t = SniTable::new(
            vec![
                cert("a.pem", &["same.example.com"]),
                cert("b.pem", &["same.example.com"]),
            ],
            1,
        );
        assert_eq!(file_for(&t, Some("same.example.com")), "a.pem");
        assert_eq!(file_for(&t, None), "b.pem");
        assert_eq!(t.default_index(), 1);
    }
}
