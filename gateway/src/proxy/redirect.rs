//! `https_redirect`: where a plain-HTTP request to such a route is sent (308).

use pingora::http::RequestHeader;

/// `https://HOST[:PORT]/path?query` for `req`, the port left out when it is 443. `None` when
/// the request names no host to redirect to.
pub(super) fn https_location(req: &RequestHeader, host: &str, port: u16) -> Option<String> {
    if host.is_empty() {
        return None;
    }
    let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
    // An absolute-form target (`GET http://h/p`) has its path here too; `*` has none.
    let path = if path.starts_with('/') { path } else { "/" };
    Some(if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str) -> RequestHeader {
        RequestHeader::build("GET", target.as_bytes(), None).expect("request")
    }

    #[test]
    fn keeps_path_and_query_and_names_the_port_unless_443() {
        let r = req("/a/b?x=1&y=2");
        assert_eq!(
            https_location(&r, "shop.example.com", 443).as_deref(),
            Some("https://shop.example.com/a/b?x=1&y=2")
        );
        assert_eq!(
            https_location(&r, "shop.example.com", 8443).as_deref(),
            Some("https://shop.example.com:8443/a/b?x=1&y=2")
        );
        assert_eq!(
            https_location(&req("http://shop.example.com/p?q"), "shop.example.com", 443).as_deref(),
            Some("https://shop.example.com/p?q")
        );
        assert_eq!(
            https_location(&req("/"), "[::1]", 8443).as_deref(),
            Some("https://[::1]:8443/")
        );
        assert_eq!(https_location(&r, "", 443), None);
    }
}
