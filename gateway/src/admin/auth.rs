//! Who may call the admin API: named identities with a role, bearer tokens compared in constant
//! time, refusals counted in `dyegate_admin_denied_total{reason}`.
//!
//! A `read` identity may call every GET (status, versions, routes, upstreams, rollouts,
//! metrics); anything else (every POST: reload, rollback, rollouts) needs `write`. Tokens are
//! kept only as SHA-256 digests and compared digest to digest, every identity each time, so the
//! time of a check tells neither how much of a token matched nor which identity it was.

use crate::config::settings::admin_tokens::AdminIdentity;
use crate::config::settings::model::AdminRole;
use http::Method;
use prometheus::core::Collector;
use prometheus::{IntCounterVec, Opts};
use sha2::{Digest, Sha256};

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header (401).
    MissingToken,
    /// A token no identity has (401).
    WrongToken,
    /// A `read` identity asked for a change (403).
    ReadOnly,
}

impl Denied {
    pub const ALL: [Denied; 3] = [Denied::MissingToken, Denied::WrongToken, Denied::ReadOnly];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Denied::MissingToken => "missing_token",
            Denied::WrongToken => "wrong_token",
            Denied::ReadOnly => "read_only",
        }
    }

    /// The answer's status and message (never the token).
    pub fn answer(self) -> (http::StatusCode, &'static str) {
        match self {
            // One message for both: the answer does not say which guess was closer.
            Denied::MissingToken | Denied::WrongToken => (
                http::StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token",
            ),
            Denied::ReadOnly => (
                http::StatusCode::FORBIDDEN,
                "this identity has role read; this call needs role write",
            ),
        }
    }
}

struct Known {
    name: String,
    role: AdminRole,
    digest: [u8; 32],
}

/// The configured identities and the refusal counter.
pub struct Identities {
    known: Vec<Known>,
    denied: IntCounterVec,
}

/// The identity of calls when no token is configured (the API is on loopback, open).
pub const ANONYMOUS: &str = "anonymous";

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Equal digests, in time independent of where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a call changes something (needs `write`): every method but GET and HEAD, except
/// `POST /explain`, which only reads (the request to explain is its body).
pub fn is_write(method: &Method, path: &str) -> bool {
    let reads = matches!(*method, Method::GET | Method::HEAD)
        || (*method == Method::POST && path == "/explain");
    !reads
}

impl Identities {
    /// Panics only on a malformed metric definition (a programming error), never on input.
    pub fn new(identities: &[AdminIdentity]) -> Self {
        let denied = IntCounterVec::new(
            Opts::new(
                "dyegate_admin_denied_total",
                "Admin API calls refused: missing_token, wrong_token (401), read_only (403).",
            ),
            &["reason"],
        )
        .unwrap_or_else(|e| panic!("dyegate_admin_denied_total: {e}"));
        for d in Denied::ALL {
            denied.with_label_values(&[d.as_str()]);
        }
        Identities {
            known: identities
                .iter()
                .map(|i| Known {
                    name: i.name.clone(),
                    role: i.role,
                    digest: digest(i.token.as_bytes()),
                })
                .collect(),
            denied,
        }
    }

    /// The role of a known identity (`write` for [`ANONYMOUS`]: an open API takes every call).
    pub fn role(&self, name: &str) -> &'static str {
        match self.known.iter().find(|k| k.name == name).map(|k| k.role) {
            Some(AdminRole::Read) => "read",
            Some(AdminRole::Write) | None => "write",
        }
    }

    /// No identity is configured: every call is [`ANONYMOUS`] (the API is on loopback).
    pub fn is_open(&self) -> bool {
        self.known.is_empty()
    }

    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![Box::new(self.denied.clone())]
    }

    /// The identity a call is made as, given its `Authorization` header value, or why it is
    /// refused (counted). With no identity configured every call is [`ANONYMOUS`].
    pub fn check(&self, authorization: Option<&[u8]>, write: bool) -> Result<&str, Denied> {
        let result = self.identify(authorization, write);
        if let Err(d) = result {
            self.denied.with_label_values(&[d.as_str()]).inc();
        }
        result
    }

    fn identify(&self, authorization: Option<&[u8]>, write: bool) -> Result<&str, Denied> {
        if self.known.is_empty() {
            return Ok(ANONYMOUS);
        }
        let token = authorization
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
            .ok_or(Denied::MissingToken)?;
        let given = digest(token);
        // Every identity is compared: no early exit on a match.
        let mut found = None;
        for k in &self.known {
            if same(&given, &k.digest) {
                found = Some(k);
            }
        }
        let k = found.ok_or(Denied::WrongToken)?;
        if write && k.role == AdminRole::Read {
            return Err(Denied::ReadOnly);
        }
        Ok(&k.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Identities {
        let id = |name: &str, role, token: &str| AdminIdentity {
            name: name.into(),
            role,
            token: token.into(),
        };
        Identities::new(&[
            id("alice", AdminRole::Write, "a-secret"),
            id("prom", AdminRole::Read, "p-secret"),
        ])
    }

    #[test]
    fn roles_and_refusals() {
        let ids = ids();
        assert_eq!(ids.check(Some(b"Bearer a-secret"), true), Ok("alice"));
        assert_eq!(ids.check(Some(b"Bearer p-secret"), false), Ok("prom"));
        assert_eq!(
            ids.check(Some(b"Bearer p-secret"), true),
            Err(Denied::ReadOnly)
        );
        assert_eq!(
            ids.check(Some(b"Bearer a-secre"), false),
            Err(Denied::WrongToken)
        );
        assert_eq!(
            ids.check(Some(b"Basic a-secret"), false),
            Err(Denied::MissingToken)
        );
        assert_eq!(ids.check(None, false), Err(Denied::MissingToken));
        assert_eq!(ids.denied.with_label_values(&["wrong_token"]).get(), 1);
        assert_eq!(ids.denied.with_label_values(&["missing_token"]).get(), 2);
        assert_eq!(ids.denied.with_label_values(&["read_only"]).get(), 1);
        let open = Identities::new(&[]);
        assert_eq!(open.check(None, true), Ok(ANONYMOUS));
    }

    #[test]
    fn only_gets_are_reads() {
        assert!(!is_write(&Method::GET, "/status"));
        assert!(!is_write(&Method::HEAD, "/status"));
        assert!(is_write(&Method::POST, "/reload"));
        assert!(is_write(&Method::DELETE, "/x"));
        assert!(!is_write(&Method::POST, "/explain"));
        assert!(is_write(&Method::PUT, "/explain"));
    }
}
