//! Cross-site safety of the admin API's changes: a POST a browser sends from another site is
//! refused, whatever it carries (a browser sends `Origin` on every POST, same-site or not; the
//! CLI and scripts send none and are not browsers, so they are not asked for one).
//!
//! A POST that names an `Origin` must come from the API's own origin (the `Origin`'s host and
//! port are the request's `Host`), must carry the page's own header `X-Dyegate-Ui` (a form on
//! another site cannot set a header, and a script there cannot without a CORS preflight, which
//! the API never grants), and, with no token configured (the API is open on loopback), must
//! name a loopback host, so a name of another site that resolves to 127.0.0.1 (DNS rebinding)
//! is not its own. `Sec-Fetch-Site`, when the browser sends it, must say `same-origin` or
//! `none`.

/// The header the page sets on every change it asks for.
pub const UI_HEADER: &str = "x-dyegate-ui";

/// Why a POST was refused as cross-site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossSite {
    /// `Origin` is not the request's own (`Host`).
    ForeignOrigin,
    /// `Origin` is not a `http(s)://host[:port]` origin (`null` from a sandboxed frame).
    OpaqueOrigin,
    /// The browser says the request is from another site (`Sec-Fetch-Site`).
    FetchSite,
    /// No `X-Dyegate-Ui` on a browser's POST.
    MissingUiHeader,
    /// No token is configured and `Host` is not a loopback address (DNS rebinding).
    NotLoopback,
}

impl CrossSite {
    /// The answer's message (403).
    pub fn message(self) -> &'static str {
        match self {
            CrossSite::ForeignOrigin => "cross-site request refused: Origin is not this admin API's own",
            CrossSite::OpaqueOrigin => "cross-site request refused: Origin is not an http(s) origin",
            CrossSite::FetchSite => "cross-site request refused: Sec-Fetch-Site is not same-origin",
            CrossSite::MissingUiHeader => "cross-site request refused: a browser's change needs the X-Dyegate-Ui header the page sets",
            CrossSite::NotLoopback => "cross-site request refused: with no admin token configured, a browser's change must be sent to a loopback address",
        }
    }

    /// The `reason` in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            CrossSite::ForeignOrigin => "foreign_origin",
            CrossSite::OpaqueOrigin => "opaque_origin",
            CrossSite::FetchSite => "fetch_site",
            CrossSite::MissingUiHeader => "missing_ui_header",
            CrossSite::NotLoopback => "not_loopback",
        }
    }
}

/// What a POST says about where it comes from.
#[derive(Debug, Default, Clone, Copy)]
pub struct Provenance<'a> {
    pub origin: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
    pub sec_fetch_site: Option<&'a [u8]>,
    pub ui_header: bool,
}

/// Whether a change may be made, given where it comes from; `open` when no token is configured.
pub fn check(p: &Provenance<'_>, open: bool) -> Result<(), CrossSite> {
    if let Some(site) = p.sec_fetch_site {
        if !matches!(site, b"same-origin" | b"none") {
            return Err(CrossSite::FetchSite);
        }
    }
    let Some(origin) = p.origin else {
        // Not a browser's request (a browser names the origin of every POST).
        return Ok(());
    };
    let authority = origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"))
        .filter(|a| !a.is_empty() && !a.contains(&b'/'))
        .ok_or(CrossSite::OpaqueOrigin)?;
    let host = p.host.ok_or(CrossSite::ForeignOrigin)?;
    if !authority.eq_ignore_ascii_case(host) {
        return Err(CrossSite::ForeignOrigin);
    }
    if open && !is_loopback(host) {
        return Err(CrossSite::NotLoopback);
    }
    if !p.ui_header {
        return Err(CrossSite::MissingUiHeader);
    }
    Ok(())
}

/// `127.x.x.x[:port]`, `[::1][:port]` or `localhost[:port]`.
fn is_loopback(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post<'a>(origin: Option<&'a str>, host: &'a str, ui: bool) -> Provenance<'a> {
        Provenance {
            origin: origin.map(str::as_bytes),
            host: Some(host.as_bytes()),
            sec_fetch_site: None,
            ui_header: ui,
        }
    }

    #[test]
    fn the_cli_sends_no_origin_and_passes() {
        assert_eq!(check(&post(None, "127.0.0.1:9901", false), true), Ok(()));
        assert_eq!(
            check(&post(None, "admin.example:9901", false), false),
            Ok(())
        );
    }

    #[test]
    fn the_page_on_its_own_origin_passes() {
        let p = post(Some("http://127.0.0.1:9901"), "127.0.0.1:9901", true);
        assert_eq!(check(&p, true), Ok(()));
        let p = post(Some("https://admin.example"), "Admin.Example", true);
        assert_eq!(check(&p, false), Ok(()));
        let p = post(Some("http://[::1]:9901"), "[::1]:9901", true);
        assert_eq!(check(&p, true), Ok(()));
        let p = post(Some("http://localhost:9901"), "localhost:9901", true);
        assert_eq!(check(&p, true), Ok(()));
    }

    #[test]
    fn another_site_is_refused() {
        let p = post(Some("http://evil.example"), "127.0.0.1:9901", true);
        assert_eq!(check(&p, true), Err(CrossSite::ForeignOrigin));
        let p = post(Some("http://127.0.0.1:9902"), "127.0.0.1:9901", true);
        assert_eq!(check(&p, true), Err(CrossSite::ForeignOrigin));
        let p = post(Some("null"), "127.0.0.1:9901", true);
        assert_eq!(check(&p, true), Err(CrossSite::OpaqueOrigin));
        let p = post(Some("http://127.0.0.1:9901/x"), "127.0.0.1:9901", true);
        assert_eq!(check(&p, true), Err(CrossSite::OpaqueOrigin));
        let mut p = post(Some("http://127.0.0.1:9901"), "127.0.0.1:9901", true);
        p.host = None;
        assert_eq!(check(&p, true), Err(CrossSite::ForeignOrigin));
    }

    #[test]
    fn a_rebound_name_is_refused_when_open() {
        let p = post(Some("http://evil.example:9901"), "evil.example:9901", true);
        assert_eq!(check(&p, true), Err(CrossSite::NotLoopback));
        // With tokens the browser has no token for the other site's page to use.
        assert_eq!(check(&p, false), Ok(()));
    }

    #[test]
    fn a_browser_post_without_the_page_header_is_refused() {
        let p = post(Some("http://127.0.0.1:9901"), "127.0.0.1:9901", false);
        assert_eq!(check(&p, true), Err(CrossSite::MissingUiHeader));
    }

    #[test]
    fn fetch_metadata_from_another_site_is_refused() {
        let mut p = post(None, "127.0.0.1:9901", true);
        p.sec_fetch_site = Some(b"cross-site");
        assert_eq!(check(&p, true), Err(CrossSite::FetchSite));
        p.sec_fetch_site = Some(b"same-site");
        assert_eq!(check(&p, true), Err(CrossSite::FetchSite));
        p.sec_fetch_site = Some(b"same-origin");
        assert_eq!(check(&p, true), Ok(()));
    }
}
