//! How a group's targets are spoken to, as serde structs mirroring routes.yaml:
//! `upstreams.NAME.protocol` and `upstreams.NAME.tls`. Checked and turned into prepared peers by
//! `compile_transport.rs`.

use schemars::JsonSchema;
use serde::Deserialize;

/// `upstreams.NAME.protocol`: the HTTP version spoken to the group's targets.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1, in cleartext or over TLS when `tls` is given [default].
    #[default]
    H1,
    /// HTTP/2 over TLS, negotiated by ALPN (`tls` optional: verification on, system roots).
    H2,
    /// HTTP/2 in cleartext with prior knowledge (gRPC servers without TLS); no `tls`.
    H2c,
}

impl UpstreamProtocol {
    /// The name as written in routes.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::H1 => "h1",
            UpstreamProtocol::H2 => "h2",
            UpstreamProtocol::H2c => "h2c",
        }
    }
}

/// `upstreams.NAME.tls`: TLS to the group's targets (with `protocol: h1` or `h2`).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// Server name sent in the handshake (SNI) and checked against the certificate; absent =
    /// the target's IP address, checked against the certificate's IP addresses (no SNI sent).
    #[serde(default)]
    pub sni: Option<String>,
    /// Verify the certificate chain and its name [true]. `false` accepts any certificate.
    #[serde(default = "default_verify")]
    pub verify: bool,
    /// PEM file of the CA certificates to trust, relative to the routes file's directory; read
    /// on every load of the routes file. Absent = the system's roots.
    #[serde(default)]
    pub ca: Option<String>,
}

impl Default for UpstreamTlsConfig {
    fn default() -> Self {
        UpstreamTlsConfig {
            sni: None,
            verify: true,
            ca: None,
        }
    }
}

fn default_verify() -> bool {
    true
}
