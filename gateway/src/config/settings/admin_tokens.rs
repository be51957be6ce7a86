//! `admin.token` and `admin.tokens` to the admin API's identities: each token file read once at
//! startup, names checked. Token values never appear in an error, a log line or `Debug` output.

use super::model::{AdminConfig, AdminRole};
use crate::config::error::Issue;
use std::fmt;
use std::path::Path;

/// The identity `admin.token` becomes.
pub const LEGACY_NAME: &str = "admin.token";

/// One identity of the admin API, its token read.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminIdentity {
    pub name: String,
    pub role: AdminRole,
    pub token: String,
}

impl fmt::Debug for AdminIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminIdentity")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("token", &"<redacted>")
            .finish()
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The identities of `admin` (empty: no token configured, the API is open on loopback);
/// problems go to `issues`, located by field path.
pub fn admin_identities(
    admin: &AdminConfig,
    base: &Path,
    issues: &mut Vec<Issue>,
) -> Vec<AdminIdentity> {
    let mut out = Vec::new();
    if let Some(token) = admin
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        out.push(AdminIdentity {
            name: LEGACY_NAME.into(),
            role: AdminRole::Write,
            token: token.to_string(),
        });
    }
    for (i, t) in admin.tokens.iter().enumerate() {
        let path = format!("admin.tokens[{i}]");
        if !valid_name(&t.name) {
            issues.push(Issue::new(
                format!("{path}.name"),
                format!(
                    "found {:?}, expected 1-64 characters of A-Z a-z 0-9 - _ .",
                    t.name
                ),
            ));
            continue;
        }
        if out.iter().any(|o: &AdminIdentity| o.name == t.name) {
            issues.push(Issue::new(
                format!("{path}.name"),
                format!("found {:?} twice, expected each name once", t.name),
            ));
            continue;
        }
        let file = base.join(&t.token_file);
        let token = match std::fs::read_to_string(&file) {
            Ok(text) => text.trim().to_string(),
            Err(e) => {
                issues.push(Issue::new(
                    format!("{path}.token_file"),
                    format!(
                        "found {} unreadable ({e}), expected a file holding the bearer token",
                        file.display()
                    ),
                ));
                continue;
            }
        };
        if token.is_empty() {
            issues.push(Issue::new(
                format!("{path}.token_file"),
                format!(
                    "found an empty file {}, expected a bearer token",
                    file.display()
                ),
            ));
            continue;
        }
        if let Some(same) = out.iter().find(|o| o.token == token) {
            // Two identities with one token: audit lines could not tell them apart.
            issues.push(Issue::new(
                format!("{path}.token_file"),
                format!(
                    "found the same token as identity {:?}, expected a token of its own",
                    same.name
                ),
            ));
            continue;
        }
        out.push(AdminIdentity {
            name: t.name.clone(),
            role: t.role,
            token,
        });
    }
    out
}
