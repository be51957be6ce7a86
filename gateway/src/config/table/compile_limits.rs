//! `limits` and `dye.limits` to a [`RateLimit`]: the key parsed, the rate checked.

use super::model::{RateLimitConfig, RATE_PER_S_BOUND};
use crate::config::error::Issue;
use crate::routing::{LimitKey, RateLimit};
use http::HeaderName;
use std::sync::Arc;

/// The compiled limit, or `None` with the problems in `issues` (located by `path`).
pub fn rate_limit(
    cfg: Option<&RateLimitConfig>,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<Arc<RateLimit>> {
    let cfg = cfg?;
    let rate = format!("{path}.rate_per_s");
    if !RATE_PER_S_BOUND.check(rate, u64::from(cfg.rate_per_s), issues) {
        return None;
    }
    let spec = cfg.key.trim();
    let key = match spec.split_once(':') {
        None if spec == "client_ip" => LimitKey::ClientIp,
        None if spec == "route" => LimitKey::Route,
        Some(("header", name)) => match HeaderName::from_bytes(name.trim().as_bytes()) {
            Ok(h) => LimitKey::Header(h),
            Err(_) => {
                issues.push(Issue::new(
                    format!("{path}.key"),
                    format!("found {spec:?}, expected `header:NAME` with a valid header name"),
                ));
                return None;
            }
        },
        _ => {
            issues.push(Issue::new(
                format!("{path}.key"),
                format!("found {spec:?}, expected `client_ip`, `header:NAME` or `route`"),
            ));
            return None;
        }
    };
    Some(Arc::new(RateLimit::new(key, cfg.rate_per_s, cfg.burst)))
}
