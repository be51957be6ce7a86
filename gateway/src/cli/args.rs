//! The options every admin command takes.

use super::output::Format;
use std::path::PathBuf;

/// The gateway.yaml a command reads: the one given, else ./gateway.yaml when it exists.
pub fn default_config(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| {
        let p = PathBuf::from("gateway.yaml");
        p.exists().then_some(p)
    })
}

#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// gateway.yaml (default: ./gateway.yaml when it exists); read only for what the other
    /// options leave open (the address, the token)
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Admin API: HOST:PORT, IP:PORT or http://HOST:PORT (default: admin.listen of gateway.yaml)
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// Bearer token from this file (default: $DYEGATE_ADMIN_TOKEN, else the token of
    /// gateway.yaml's admin.token or admin.tokens)
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Output: table (default on a terminal) or json (default otherwise)
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,
}

/// A version id as `dyegate versions N` takes it: the number `/versions` lists, or `N.K` for a
/// local change kept on a gateway that follows etcd.
pub fn version_id(given: &str) -> Result<crate::reload::VersionId, String> {
    given.parse().map_err(|_| {
        format!("found {given:?}, expected a version number, or N.K for a local change (`dyegate versions` lists them)")
    })
}
