//! The proxy's settings from gateway.yaml that a SIGHUP can change while it serves (see
//! `config::settings::live`): read once per request through one shared handle, swapped whole.

use crate::config::Gateway;
use crate::contain::DebugPolicy;
use arc_swap::ArcSwap;
use dyegate_plugins::Forwarding;
use std::sync::Arc;

pub struct Live {
    /// `server_header`: the `Server` header of dyegate's own answers.
    pub server_header: Option<http::HeaderValue>,
    /// `forwarded`: trusted proxies and the forwarding headers written upstream.
    pub forwarding: Arc<Forwarding>,
    /// `debug.trusted_sources`: who may ask for `x-dyegate-decision`.
    pub debug: DebugPolicy,
    /// `tls.hsts`: the `Strict-Transport-Security` of answers over HTTPS. Fixed at start, as
    /// all of `tls:` (a reload carries the running value over).
    pub hsts: Option<http::HeaderValue>,
}

/// The handle the proxy (and the admin API, for the client's address) reads them through.
pub type SharedLive = Arc<ArcSwap<Live>>;

impl Live {
    pub fn of(gw: &Gateway) -> Live {
        Live {
            server_header: gw.server_header.clone(),
            forwarding: Arc::new(gw.forwarded.clone()),
            debug: DebugPolicy::new(gw.debug_trusted.clone()),
            hsts: gw.tls.as_ref().and_then(|t| t.hsts.clone()),
        }
    }
}

impl Default for Live {
    /// gateway.yaml's defaults.
    fn default() -> Self {
        Live {
            server_header: Some(http::HeaderValue::from_static("dyegate")),
            forwarding: Arc::new(crate::config::settings::forwarded::forwarding_settings(
                &Default::default(),
                &mut Vec::new(),
            )),
            debug: DebugPolicy::new(Default::default()),
            hsts: None,
        }
    }
}
