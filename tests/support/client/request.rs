//! A request as tests write it, and the response they read back.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::header::{HeaderName, HeaderValue, HOST};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use super::conn::Conn;

/// The body type every client request carries.
pub type ReqBody = UnsyncBoxBody<Bytes, Infallible>;

/// A request under construction: `Req::get("/api").host("shop.example.com").send(addr)`.
pub struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) host: Option<String>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: ReqBody,
}

impl Req {
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            host: None,
            headers: Vec::new(),
            body: Empty::new().boxed_unsync(),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path)
    }

    /// The `Host` header (HTTP/1.1) or `:authority` (HTTP/2); defaults to the gateway address.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    /// Adds a header (repeatable: calling twice with one name sends two values).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_str(value).expect("a valid header value");
        self.headers.push((name, value));
        self
    }

    /// A body of known length (sent with `content-length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Full::new(body.into()).boxed_unsync();
        self
    }

    /// A body of unknown length, sent chunk by chunk (`transfer-encoding: chunked` on HTTP/1.1).
    pub fn body_stream(mut self, chunks: impl Stream<Item = Bytes> + Send + 'static) -> Self {
        let frames = chunks.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
        self.body = BodyExt::boxed_unsync(StreamBody::new(frames));
        self
    }

    /// Builds the `http::Request` for a connection to `addr` speaking `version`.
    pub(crate) fn into_http(self, addr: SocketAddr, version: Version) -> http::Request<ReqBody> {
        let authority = self.host.unwrap_or_else(|| addr.to_string());
        let mut builder = http::Request::builder()
            .method(self.method)
            .version(version);
        if version == Version::HTTP_2 {
            // HTTP/2 carries the host as :authority, taken from an absolute URI.
            let uri: Uri = format!("http://{authority}{}", self.path)
                .parse()
                .expect("a valid absolute URI");
            builder = builder.uri(uri);
        } else {
            builder = builder.uri(self.path.as_str()).header(HOST, authority);
        }
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder.body(self.body).expect("a valid request")
    }

    /// Sends the request on a new HTTP/1.1 connection to `addr`; panics on a transport error.
    pub async fn send(self, addr: SocketAddr) -> Resp {
        Conn::http1(addr).await.send(self).await
    }

    /// Like [`send`](Self::send), from source address `source` (any 127.x.y.z works on Linux),
    /// to test what the gateway does with the peer address.
    pub async fn send_from(self, source: IpAddr, addr: SocketAddr) -> Resp {
        Conn::http1_from(source, addr).await.send(self).await
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// Header `name` as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `x-upstream` header: which upstream answered.
    pub fn upstream(&self) -> Option<&str> {
        self.header(crate::upstream::UPSTREAM_HEADER)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (the upstream's echo); panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }

    /// A header the upstream received, read from the JSON echo (names are lowercase).
    pub fn echoed_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name].as_str().map(str::to_owned)
    }
}
