//! The live view's files, `GET /ui/`: a page, its script, its style and its icon, embedded in
//! the binary (no network, no build step). The files hold no data: they are served without a
//! token, and the page asks the API (with the token it is given) for everything it shows. Every
//! answer forbids inline script and style, other origins, framing and MIME sniffing.

use http::{Method, Response, StatusCode};
use pingora::http::RequestHeader;

/// Everything from this origin only; no inline script or style, no plugin, no frame, no form
/// posted anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const FILES: [(&str, &str, &[u8]); 4] = [
    (
        "/ui/",
        "text/html; charset=utf-8",
        include_bytes!("ui/index.html"),
    ),
    (
        "/ui/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("ui/app.js"),
    ),
    (
        "/ui/style.css",
        "text/css; charset=utf-8",
        include_bytes!("ui/style.css"),
    ),
    (
        "/ui/icon.svg",
        "image/svg+xml",
        include_bytes!("ui/icon.svg"),
    ),
];

/// The answer to a request for the page's files, `None` for any other path.
pub fn answer(req: &RequestHeader) -> Option<Response<Vec<u8>>> {
    let path = req.uri.path();
    if path != "/ui" && !path.starts_with("/ui/") {
        return None;
    }
    let builder = Response::builder()
        .header(
            http::header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        )
        .header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(http::header::X_FRAME_OPTIONS, "DENY")
        .header(http::header::REFERRER_POLICY, "no-referrer")
        .header("cross-origin-opener-policy", "same-origin")
        .header("cross-origin-resource-policy", "same-origin")
        .header(http::header::CACHE_CONTROL, "no-cache");
    let (status, content_type, body): (StatusCode, &str, &[u8]) =
        if !matches!(req.method, Method::GET | Method::HEAD) {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                b"method not allowed\n",
            )
        } else if path == "/ui" {
            let answer = builder
                .status(StatusCode::PERMANENT_REDIRECT)
                .header(http::header::LOCATION, "/ui/")
                .header(http::header::CONTENT_LENGTH, 0)
                .body(Vec::new());
            return Some(answer.unwrap_or_else(|_| Response::new(Vec::new())));
        } else {
            let path = if path == "/ui/index.html" {
                "/ui/"
            } else {
                path
            };
            match FILES.iter().find(|(p, _, _)| *p == path) {
                Some((_, t, b)) => (StatusCode::OK, t, b),
                None => (
                    StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    b"not found\n",
                ),
            }
        };
    let answer = builder
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body.to_vec());
    Some(answer.unwrap_or_else(|_| Response::new(Vec::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Response<Vec<u8>> {
        let req = RequestHeader::build(Method::GET, path.as_bytes(), None).expect("request");
        answer(&req).expect("a page file")
    }

    #[test]
    fn files_are_served_with_a_strict_policy() {
        let page = get("/ui/");
        assert_eq!(page.status(), StatusCode::OK);
        let h = page.headers();
        assert_eq!(h["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(
            get("/ui/app.js").headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(get("/ui/nope").status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/ui").headers()["location"], "/ui/");
        let other = RequestHeader::build(Method::GET, b"/status", None).expect("request");
        assert!(answer(&other).is_none());
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = String::from_utf8_lossy(include_bytes!("ui/index.html"));
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("style="), "inline style");
        assert!(!html.contains("<style"), "inline style");
        assert!(!html.contains("http://") && !html.contains("https://"));
        let js = String::from_utf8_lossy(include_bytes!("ui/app.js"));
        // Text from the API goes through textContent, never through HTML parsing.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(sink), "app.js uses {sink}");
        }
    }
}
