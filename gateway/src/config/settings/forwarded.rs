//! gateway.yaml's `forwarded:` which peers are trusted proxies (their `X-Forwarded-For` names
//! the client, their forwarding headers are extended), and which forwarding headers the gateway
//! writes upstream. Compiled into [`dyegate_plugins::Forwarding`], read once per request.

use crate::config::error::Issue;
use crate::config::networks::networks;
use dyegate_plugins::forwarded::HeaderSet;
use dyegate_plugins::Forwarding;
use schemars::JsonSchema;
use serde::Deserialize;

/// `forwarded:` as written in gateway.yaml (defaults in the field docs).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForwardedConfig {
    /// Networks of the proxies in front of the gateway (layer-7 balancers): their
    /// `X-Forwarded-For` names the client, their forwarding headers are extended. Any other
    /// peer's are replaced [none].
    #[serde(default)]
    pub trusted_sources: Vec<String>,
    /// The forwarding headers written upstream: `x-forwarded` (X-Forwarded-For, -Proto, -Host),
    /// `forwarded` (RFC 7239), `x-real-ip` (the client address) [x-forwarded].
    #[serde(default = "default_headers")]
    pub headers: Vec<ForwardedHeader>,
}

impl Default for ForwardedConfig {
    fn default() -> Self {
        ForwardedConfig {
            trusted_sources: Vec::new(),
            headers: default_headers(),
        }
    }
}

fn default_headers() -> Vec<ForwardedHeader> {
    vec![ForwardedHeader::XForwarded]
}

/// `forwarded.headers[i]`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (the peer appended), `X-Forwarded-Proto`, `X-Forwarded-Host`.
    XForwarded,
    /// RFC 7239 `Forwarded: for=...;proto=...;host=...`.
    Forwarded,
    /// `X-Real-IP`: the client address.
    XRealIp,
}

impl ForwardedHeader {
    fn as_str(self) -> &'static str {
        match self {
            ForwardedHeader::XForwarded => "x-forwarded",
            ForwardedHeader::Forwarded => "forwarded",
            ForwardedHeader::XRealIp => "x-real-ip",
        }
    }
}

/// The compiled policy; every bad entry is an issue.
pub fn forwarding_settings(cfg: &ForwardedConfig, issues: &mut Vec<Issue>) -> Forwarding {
    let trusted = networks(
        &cfg.trusted_sources,
        "forwarded.trusted_sources",
        "10.0.0.0/8",
        issues,
    );
    let mut set = HeaderSet::default();
    for (i, h) in cfg.headers.iter().enumerate() {
        let flag = match h {
            ForwardedHeader::XForwarded => &mut set.x_forwarded,
            ForwardedHeader::Forwarded => &mut set.forwarded,
            ForwardedHeader::XRealIp => &mut set.x_real_ip,
        };
        if *flag {
            issues.push(Issue::new(
                format!("forwarded.headers[{i}]"),
                format!("found {} twice, expected each at most once", h.as_str()),
            ));
        }
        *flag = true;
    }
    Forwarding::new(trusted, set)
}
