//! The upstream's answer to one request: echo what arrived as JSON, after the behaviour the path
//! asks for (`/slow?ms=N`, `/status/NNN`, `/stream?chunks=N&size=M`).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Map, Value};

/// The response body type of every upstream answer.
pub type UpstreamBody = BoxBody<Bytes, Infallible>;

/// Response header naming the upstream that answered.
pub const UPSTREAM_HEADER: &str = "x-upstream";

/// What the upstream learned by reading a request body to its end.
struct BodySummary {
    len: u64,
    crc: u32,
}

/// Reads the body frame by frame: only one chunk is ever held, so a 10 MB POST costs nothing.
async fn summarize(mut body: Incoming) -> Result<BodySummary, hyper::Error> {
    let mut len = 0u64;
    let mut crc = crc32fast::Hasher::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            len += data.len() as u64;
            crc.update(&data);
        }
    }
    Ok(BodySummary {
        len,
        crc: crc.finalize(),
    })
}

/// Value of query parameter `key`, if present.
pub(crate) fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

pub(crate) fn query_number(query: Option<&str>, key: &str) -> Option<u64> {
    query_param(query, key)?.parse().ok()
}

/// The JSON echo of a request head plus its body summary.
fn echo_json(name: &str, parts: &http::request::Parts, body: &BodySummary) -> Value {
    let mut headers = Map::new();
    for (key, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(key.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(key.as_str().to_owned(), Value::String(value));
            }
        }
    }
    json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": body.len,
        "body_crc": body.crc,
    })
}

pub(crate) fn with_name(
    mut response: Response<UpstreamBody>,
    name: &str,
) -> Response<UpstreamBody> {
    if let Ok(value) = HeaderValue::from_str(name) {
        response.headers_mut().insert(UPSTREAM_HEADER, value);
    }
    response
}

pub(crate) fn plain(status: StatusCode, text: impl Into<Bytes>) -> Response<UpstreamBody> {
    let mut response = Response::new(Full::new(text.into()).boxed());
    *response.status_mut() = status;
    response
}

/// `/stream?chunks=N&size=M`: a chunked response of N chunks of M bytes (`b'a'`), no length.
fn chunked(query: Option<&str>) -> Response<UpstreamBody> {
    let chunks = query_number(query, "chunks").unwrap_or(4);
    let size = usize::try_from(query_number(query, "size").unwrap_or(1024)).unwrap_or(1024);
    let chunk = Bytes::from(vec![b'a'; size]);
    let frames = (0..chunks).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone())));
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream::iter(frames))));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

/// Answers one plain (non-upgrade) request.
pub(crate) async fn respond(
    name: &str,
    recorder: &super::Recorder,
    req: Request<Incoming>,
) -> Response<UpstreamBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query();

    let summary = match summarize(body).await {
        Ok(summary) => {
            recorder.body(&parts, summary.len, summary.crc);
            summary
        }
        Err(_) => {
            return with_name(
                plain(StatusCode::BAD_REQUEST, "request body broke off\n"),
                name,
            )
        }
    };

    let mut status = StatusCode::OK;
    if path == "/slow" {
        let ms = query_number(query, "ms").unwrap_or(1000);
        // time is tested: `/slow?ms=N` answers after N ms; the gateway's timeouts and latency figures are under test.
        tokio::time::sleep(Duration::from_millis(ms)).await;
    } else if path == "/stream" {
        return with_name(chunked(query), name);
    } else if let Some(code) = path.strip_prefix("/status/") {
        match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(code) => status = code,
            None => {
                return with_name(
                    plain(StatusCode::BAD_REQUEST, "expected /status/NNN\n"),
                    name,
                )
            }
        }
    }

    let body = echo_json(name, &parts, &summary).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_name(response, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_query_params() {
        assert_eq!(query_param(Some("a=1&ms=250"), "ms"), Some("250"));
        assert_eq!(query_param(Some("ms"), "ms"), None);
        assert_eq!(query_param(None, "ms"), None);
        assert_eq!(query_number(Some("ms=x"), "ms"), None);
    }
}
