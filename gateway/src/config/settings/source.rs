//! `source:` of gateway.yaml: where the routing table comes from when it is not the routes file.
//! Today one kind, `etcd`: a fleet of gateways following one table (see `crate::source::etcd`).

use crate::config::error::Issue;
use crate::config::range::Bound;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// `source:` exactly one kind of source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The routing table lives in etcd under a prefix, one key per top-level entry.
    pub etcd: Option<EtcdConfig>,
}

/// `source.etcd:` the cluster and the prefix this fleet's table lives under.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// `http://HOST:PORT` of the etcd members.
    pub endpoints: Vec<String>,
    /// Where the table lives, e.g. `/dyegate/prod/`.
    pub prefix: String,
    /// Optional; the password is read from `password_file`, never written inline.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the etcd password (never inline), relative to gateway.yaml.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Connect timeout per endpoint.
    #[serde(default = "default_dial_timeout_ms")]
    #[schemars(range(min = DIAL_TIMEOUT_BOUND.min, max = DIAL_TIMEOUT_BOUND.max))]
    pub dial_timeout_ms: u64,
}

/// `source.etcd.dial_timeout_ms`: at most a minute.
pub const DIAL_TIMEOUT_BOUND: Bound<u64> = Bound::millis(1, 60_000);

fn default_dial_timeout_ms() -> u64 {
    2000
}

/// The checked etcd settings the gateway and the fleet commands connect with.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdSettings {
    pub endpoints: Vec<String>,
    /// Ends with `/`.
    pub prefix: String,
    /// (username, password read from password_file)
    pub user: Option<(String, String)>,
    pub dial_timeout: Duration,
}

/// Checks `source:`; `base` resolves `password_file`. `routes_given`: gateway.yaml also has
/// `routes:` (the two are exclusive).
pub fn source_settings(
    source: Option<&SourceConfig>,
    routes_given: bool,
    base: &Path,
    issues: &mut Vec<Issue>,
) -> Option<EtcdSettings> {
    let source = source?;
    if routes_given {
        issues.push(Issue::new(
            "source",
            "found both `routes` and `source`, expected one of them (the table comes from a file or from etcd)",
        ));
    }
    let Some(etcd) = &source.etcd else {
        issues.push(Issue::new(
            "source",
            "found no source kind, expected `etcd`",
        ));
        return None;
    };
    let before = issues.len();
    if etcd.endpoints.is_empty() {
        issues.push(Issue::new(
            "source.etcd.endpoints",
            "found an empty list, expected at least one http://HOST:PORT",
        ));
    }
    let mut endpoints = Vec::new();
    for (i, e) in etcd.endpoints.iter().enumerate() {
        match endpoint(e) {
            Ok(e) => endpoints.push(e),
            Err(m) => issues.push(Issue::new(format!("source.etcd.endpoints[{i}]"), m)),
        }
    }
    let prefix = etcd.prefix.trim();
    if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.len() < 2 {
        issues.push(Issue::new(
            "source.etcd.prefix",
            format!("found {prefix:?}, expected a key prefix that starts and ends with `/`, such as /dyegate/prod/"),
        ));
    }
    DIAL_TIMEOUT_BOUND.check("source.etcd.dial_timeout_ms", etcd.dial_timeout_ms, issues);
    let user = match (&etcd.username, &etcd.password_file) {
        (None, None) => None,
        (Some(_), None) => {
            issues.push(Issue::new(
                "source.etcd.username",
                "found a username without password_file, expected both or neither",
            ));
            None
        }
        (None, Some(_)) => {
            issues.push(Issue::new(
                "source.etcd.password_file",
                "found password_file without username, expected both or neither",
            ));
            None
        }
        (Some(u), Some(f)) => match std::fs::read_to_string(base.join(f)) {
            Ok(p) => Some((u.clone(), p.trim_end_matches(['\n', '\r']).to_string())),
            Err(e) => {
                issues.push(Issue::new(
                    "source.etcd.password_file",
                    format!("found {f:?}, which cannot be read ({e}), expected a readable file holding the password"),
                ));
                None
            }
        },
    };
    (issues.len() == before).then(|| EtcdSettings {
        endpoints,
        prefix: prefix.to_string(),
        user,
        dial_timeout: Duration::from_millis(etcd.dial_timeout_ms),
    })
}

/// `http://HOST:PORT` (no TLS client is built in).
fn endpoint(e: &str) -> Result<String, String> {
    let e = e.trim();
    let rest = e.strip_prefix("http://").ok_or_else(|| {
        format!("found {e:?}, expected http://HOST:PORT (plain http: no TLS client is built in)")
    })?;
    let authority = rest.trim_end_matches('/');
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(format!("http://{authority}"))
        }
        _ => Err(format!("found {e:?}, expected http://HOST:PORT")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(username: Option<&str>, password_file: Option<&str>) -> SourceConfig {
        SourceConfig {
            etcd: Some(EtcdConfig {
                endpoints: vec!["http://127.0.0.1:2379/".into()],
                prefix: "/dyegate/prod/".into(),
                username: username.map(Into::into),
                password_file: password_file.map(Into::into),
                dial_timeout_ms: 2000,
            }),
        }
    }

    #[test]
    fn the_password_is_read_from_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("etcd.pass"), "s3cret\n").expect("write");
        let mut issues = Vec::new();
        let s = source_settings(
            Some(&config(Some("dyegate"), Some("etcd.pass"))),
            false,
            dir.path(),
            &mut issues,
        );
        assert_eq!(issues, []);
        let s = s.expect("settings");
        assert_eq!(s.user, Some(("dyegate".into(), "s3cret".into())));
        assert_eq!(s.endpoints, ["http://127.0.0.1:2379"]);
    }

    #[test]
    fn username_and_password_file_go_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut issues = Vec::new();
        source_settings(
            Some(&config(Some("u"), None)),
            false,
            dir.path(),
            &mut issues,
        );
        source_settings(
            Some(&config(None, Some("p"))),
            false,
            dir.path(),
            &mut issues,
        );
        source_settings(
            Some(&config(Some("u"), Some("missing"))),
            false,
            dir.path(),
            &mut issues,
        );
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "source.etcd.username",
                "source.etcd.password_file",
                "source.etcd.password_file"
            ]
        );
        assert!(issues[2]
            .message
            .starts_with("found \"missing\", which cannot be read"));
    }
}
