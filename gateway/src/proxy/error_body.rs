//! The body of an error answer dyegate writes itself (4xx/5xx): the status, what happened in a
//! few words and the request's trace id, so that a user who sees a 502 can quote the one id the
//! access log, the traces and the upstream's logs share. Plain text, or JSON when the client
//! accepts JSON and not text. Pure: no I/O.

use http::HeaderMap;

/// What an error answer says.
pub struct ErrorBody<'a> {
    pub status: u16,
    /// A few words on what happened (`no healthy target in upstream group shop`).
    pub detail: &'a str,
    /// The request's trace id, 32 hex digits.
    pub trace_id: Option<&'a str>,
}

/// The content type and body of an error answer.
pub fn render(e: &ErrorBody<'_>, request: &HeaderMap) -> (&'static str, String) {
    let reason = http::StatusCode::from_u16(e.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let detail = e.detail.trim();
    if wants_json(request) {
        let mut body = serde_json::json!({
            "status": e.status,
            "error": reason,
            "detail": detail,
        });
        if let Some(id) = e.trace_id {
            body["trace_id"] = id.into();
        }
        let mut text = body.to_string();
        text.push('\n');
        return ("application/json", text);
    }
    let mut text = format!("{} {reason}: {detail}\n", e.status);
    if let Some(id) = e.trace_id {
        text.push_str("trace id: ");
        text.push_str(id);
        text.push('\n');
    }
    ("text/plain; charset=utf-8", text)
}

/// Whether the client's `Accept` prefers JSON: it accepts `application/json` (or a `+json` type)
/// with a non-zero quality, at least as much as it accepts `text/plain` or `text/*`.
fn wants_json(request: &HeaderMap) -> bool {
    let mut json = 0.0f32;
    let mut text = 0.0f32;
    for value in request.get_all(http::header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media == "application/json" || media.ends_with("+json") {
                json = json.max(q);
            } else if media == "text/plain" || media == "text/*" {
                text = text.max(q);
            }
        }
    }
    json > 0.0 && json >= text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = v.parse() {
            h.insert(http::header::ACCEPT, v);
        }
        h
    }

    const ID: &str = "0af7651916cd43dd8448eb211c80319c";

    #[test]
    fn text_names_the_status_what_happened_and_the_trace_id() {
        let e = ErrorBody {
            status: 502,
            detail: "no target of upstream group shop answered\n",
            trace_id: Some(ID),
        };
        let (ct, body) = render(&e, &HeaderMap::new());
        assert_eq!(ct, "text/plain; charset=utf-8");
        assert_eq!(
            body,
            format!("502 Bad Gateway: no target of upstream group shop answered\ntrace id: {ID}\n")
        );
        let (_, body) = render(
            &ErrorBody {
                trace_id: None,
                status: 499,
                ..e
            },
            &accept("*/*"),
        );
        assert_eq!(
            body,
            "499 Error: no target of upstream group shop answered\n"
        );
    }

    #[test]
    fn json_when_the_client_prefers_it() {
        let e = ErrorBody {
            status: 429,
            detail: "rate limit of route api exceeded",
            trace_id: Some(ID),
        };
        for a in [
            "application/json",
            "application/problem+json",
            "text/html, application/json;q=0.9",
            "text/plain;q=0.5, application/json",
        ] {
            let (ct, body) = render(&e, &accept(a));
            assert_eq!(ct, "application/json", "{a}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            assert_eq!(
                v,
                serde_json::json!({"status": 429, "error": "Too Many Requests", "detail": "rate limit of route api exceeded", "trace_id": ID}),
                "{a}"
            );
        }
        for a in [
            "",
            "*/*",
            "text/plain, application/json;q=0.5",
            "application/json;q=0",
            "text/*",
        ] {
            assert_eq!(render(&e, &accept(a)).0, "text/plain; charset=utf-8", "{a}");
        }
    }
}
