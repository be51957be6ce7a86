//! One HTTP/1.1 request to a hook or a Prometheus API, with one deadline over connect, TLS,
//! request and answer: a fresh connection each time (hooks are called seconds apart), the
//! answer's body read up to 1 MiB. https verifies the server against the system's roots.

use super::HookUrl;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The most of an answer's body that is read.
pub const MAX_BODY: usize = 1 << 20;

/// An answer: its status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// Sends `method` to `url` with `headers` and `body`; fails with a line saying why when no
/// answer came within `timeout`.
pub async fn send(
    url: &HookUrl,
    method: Method,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Reply, String> {
    match tokio::time::timeout(timeout, exchange(url, method, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

async fn exchange(
    url: &HookUrl,
    method: Method,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connect to {}: {e}", url.authority()))?;
    let _ = tcp.set_nodelay(true);
    if !url.tls {
        return over(tcp, url, method, headers, body).await;
    }
    let name = pingora::tls::ServerName::try_from(url.host.clone())
        .map_err(|e| format!("{}: {e}", url.host))?;
    let tls = pingora::tls::TlsConnector::from(tls_config()?)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {}: {e}", url.authority()))?;
    over(tls, url, method, headers, body).await
}

async fn over<S>(
    stream: S,
    url: &HookUrl,
    method: Method,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Reply, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP with {}: {e}", url.authority()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder()
        .method(method)
        .uri(url.path.as_str())
        .header(http::header::HOST, url.authority())
        .header(
            http::header::USER_AGENT,
            concat!("dyegate/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request to {url}: {e}"))?;
    let answer = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP with {}: {e}", url.authority()))?;
    let status = answer.status().as_u16();
    let body = Limited::new(answer.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("answer of {}: {e}", url.authority()))?
        .to_bytes();
    Ok(Reply { status, body })
}

/// The client TLS settings: the system's roots, HTTP/1.1.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let native = pingora::tls::load_native_certs();
            for cert in native.unwrap_or_default() {
                let _ = roots.add(cert);
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS settings: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
}

/// `text` percent-encoded for a query string (every byte but the unreserved ones).
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            form_encode("sum(rate(x{v=\"c\"}[1m])) > 0.5"),
            "sum%28rate%28x%7Bv%3D%22c%22%7D%5B1m%5D%29%29%20%3E%200.5"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_silent_server_are_errors_within_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let url = HookUrl::parse(&format!("http://{addr}/x")).expect("url");
        // Accepts (the kernel's backlog) but never answers.
        let e = send(&url, Method::POST, &[], vec![], Duration::from_millis(200))
            .await
            .expect_err("no answer");
        assert_eq!(e, "no answer within 200 ms");
        drop(listener);
        let e = send(&url, Method::GET, &[], vec![], Duration::from_secs(5))
            .await
            .expect_err("refused");
        assert!(e.starts_with(&format!("connect to {addr}: ")), "{e}");
    }
}
