//! gateway.yaml's `tls.session_tickets` and `tls.hsts`: what HTTPS sessions and answers carry
//! beyond the certificate. The ticket key files themselves are read by [`crate::tls::tickets`]
//! (at startup, by `dyegate check`, and on every reload, with the certificates).

use crate::config::error::Issue;
use crate::config::range::Ranged;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// TLS 1.3's longest ticket lifetime (RFC 8446, 4.6.1): seven days.
pub const MAX_TICKET_LIFETIME_S: u64 = 604_800;
/// Ten years: a longer HSTS `max-age` is a typo (milliseconds for seconds).
pub const MAX_HSTS_AGE_S: u64 = 315_360_000;

/// `tls.session_tickets`: stateless session resumption (RFC 5077 / TLS 1.3 tickets).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionTicketsConfig {
    /// Issue session tickets [true]; false: every connection makes a full handshake.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Ticket key files of 80 (or 48) random bytes each (`openssl rand 80 > FILE`), relative to
    /// gateway.yaml's directory: the first encrypts new tickets, every one decrypts. Shared by
    /// the gateways of a fleet, a client resumes on any of them; rotate by putting a new file
    /// first. Re-read with the certificates. Empty: keys made by each process, handed to the
    /// next one on `dyegate upgrade` [].
    #[serde(default)]
    pub key_files: Vec<String>,
    /// How long a ticket resumes its session, in seconds (at most 604800) [14400].
    #[serde(default = "default_lifetime_s")]
    pub lifetime_s: Ranged<1, MAX_TICKET_LIFETIME_S>,
}

impl Default for SessionTicketsConfig {
    fn default() -> Self {
        SessionTicketsConfig {
            enabled: true,
            key_files: Vec::new(),
            lifetime_s: default_lifetime_s(),
        }
    }
}

/// `tls.hsts`: a `Strict-Transport-Security` header on every answer over HTTPS.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HstsConfig {
    /// `max-age`: how long browsers go straight to HTTPS, in seconds (0 tells them to forget).
    pub max_age_s: Ranged<0, MAX_HSTS_AGE_S>,
    /// `includeSubDomains`: the same for every subdomain [false].
    #[serde(default)]
    pub include_subdomains: bool,
}

fn default_true() -> bool {
    true
}
fn default_lifetime_s() -> Ranged<1, MAX_TICKET_LIFETIME_S> {
    Ranged(14_400)
}

/// Session tickets as the process runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTickets {
    pub enabled: bool,
    /// Absolute paths, in file order (the first encrypts); empty: generated keys.
    pub key_files: Vec<PathBuf>,
    pub lifetime: Duration,
}

impl Default for SessionTickets {
    fn default() -> Self {
        let c = SessionTicketsConfig::default();
        SessionTickets {
            enabled: c.enabled,
            key_files: Vec::new(),
            lifetime: Duration::from_secs(c.lifetime_s.0),
        }
    }
}

/// Resolves the key files against gateway.yaml's directory (`resolve`); a file named twice is
/// an error (it would decrypt twice and hide a rotation mistake).
pub fn session_tickets(
    config: &SessionTicketsConfig,
    resolve: impl Fn(&str) -> PathBuf,
    issues: &mut Vec<Issue>,
) -> SessionTickets {
    let mut key_files: Vec<PathBuf> = Vec::new();
    for (i, f) in config.key_files.iter().enumerate() {
        let path = resolve(f);
        if key_files.contains(&path) {
            issues.push(Issue::new(
                format!("tls.session_tickets.key_files[{i}]"),
                format!("found {f:?} twice, expected each key file once"),
            ));
        } else {
            key_files.push(path);
        }
    }
    if !config.enabled && !config.key_files.is_empty() {
        issues.push(Issue::new(
            "tls.session_tickets.key_files",
            "found key files with enabled: false, expected no key files when tickets are off",
        ));
    }
    SessionTickets {
        enabled: config.enabled,
        key_files,
        lifetime: Duration::from_secs(config.lifetime_s.0),
    }
}

/// The header value of `tls.hsts`: `max-age=N` and `; includeSubDomains`.
pub fn hsts_header(config: &HstsConfig) -> http::HeaderValue {
    let mut value = format!("max-age={}", config.max_age_s.0);
    if config.include_subdomains {
        value.push_str("; includeSubDomains");
    }
    // Digits, letters, `=`, `;` and a space: always a valid header value.
    http::HeaderValue::from_str(&value).unwrap_or(http::HeaderValue::from_static("max-age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests_files::load_gateway as load;

    const BASE: &str = "listen: [\"127.0.0.1:8080\"]\ntls:\n  listen: [\"127.0.0.1:8443\"]\n  certificates: [{ cert: a.pem, key: a.key }]\n";

    #[test]
    fn tickets_are_on_with_generated_keys_by_default_and_hsts_off() {
        let tls = load(BASE).expect("valid").tls.expect("tls");
        assert_eq!(tls.session_tickets, SessionTickets::default());
        assert!(tls.session_tickets.enabled);
        assert!(tls.session_tickets.key_files.is_empty());
        assert_eq!(tls.session_tickets.lifetime, Duration::from_secs(14_400));
        assert_eq!(tls.hsts, None);
    }

    #[test]
    fn every_field_is_read() {
        let gw = load(&format!(
            "{BASE}  session_tickets: {{ key_files: [t/new.key, ./t/old.key], lifetime_s: 600 }}\n  hsts: {{ max_age_s: 31536000, include_subdomains: true }}\n"
        ))
        .expect("valid");
        let tls = gw.tls.expect("tls");
        let files = &tls.session_tickets.key_files;
        assert_eq!(files.len(), 2);
        assert!(files[0].is_absolute() && files[0].ends_with("t/new.key"));
        assert!(files[1].ends_with("t/old.key"));
        assert_eq!(tls.session_tickets.lifetime, Duration::from_secs(600));
        assert_eq!(
            tls.hsts
                .as_ref()
                .map(|h| h.to_str().unwrap_or_default().to_string()),
            Some("max-age=31536000; includeSubDomains".to_string())
        );
        let gw = load(&format!(
            "{BASE}  hsts: {{ max_age_s: 0 }}\n  session_tickets: {{ enabled: false }}\n"
        ))
        .expect("valid");
        let tls = gw.tls.expect("tls");
        assert_eq!(tls.hsts, Some(http::HeaderValue::from_static("max-age=0")));
        assert!(!tls.session_tickets.enabled);
    }

    #[test]
    fn bad_fields_are_located() {
        assert_eq!(
            load(&format!("{BASE}  session_tickets: {{ lifetime_s: 0 }}\n")).err().as_deref(),
            Some("gateway.yaml:5:34: tls.session_tickets.lifetime_s: found 0, expected a whole number from 1 to 604800")
        );
        assert_eq!(
            load(&format!("{BASE}  session_tickets: {{ key_files: [a.key, ./a.key] }}\n")).err().as_deref(),
            Some("gateway.yaml:5:41: tls.session_tickets.key_files[1]: found \"./a.key\" twice, expected each key file once")
        );
        assert_eq!(
            load(&format!("{BASE}  session_tickets: {{ enabled: false, key_files: [a.key] }}\n")).err().as_deref(),
            Some("gateway.yaml:5:49: tls.session_tickets.key_files: found key files with enabled: false, expected no key files when tickets are off")
        );
        assert_eq!(
            load(&format!("{BASE}  session_tickets: {{ keys: [a.key] }}\n")).err().as_deref(),
            Some("gateway.yaml:5:22: tls.session_tickets.keys: found unknown field `keys`, expected one of `enabled`, `key_files`, `lifetime_s`")
        );
        assert_eq!(
            load(&format!("{BASE}  hsts: {{ include_subdomains: true }}\n"))
                .err()
                .as_deref(),
            Some("gateway.yaml:5:9: tls.hsts: missing required field `max_age_s`")
        );
        assert_eq!(
            load(&format!("{BASE}  hsts: {{ max_age_s: 31536000000 }}\n")).err().as_deref(),
            Some("gateway.yaml:5:22: tls.hsts.max_age_s: found 31536000000, expected a whole number from 0 to 315360000")
        );
    }
}
