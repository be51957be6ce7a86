//! The client side of dyegate's HTTPS listeners: a rustls client that says which certificate
//! each handshake got (and what ALPN and version it agreed) and holds a keep-alive HTTP/1.1
//! connection open across a certificate swap; curl over TLS; and certificates with a chosen
//! validity (expired, expiring soon) for `dyegate check`.
//!
//! ```no_run
//! use dyegate_suite::certs::TestCa;
//! use dyegate_suite::tls::TlsClient;
//! # async fn demo(addr: std::net::SocketAddr) {
//! let ca = TestCa::new("test CA");
//! let mut conn = TlsClient::connect(addr, Some("shop.example.com")).await.expect("handshake");
//! let served = conn.peer_leaf(); // compare with `ca.leaf(...).cert_der`
//! let (status, body) = conn.get("shop.example.com", "/").await.expect("request");
//! # }
//! ```

pub mod sessions;
pub mod site;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Longest a test waits for a handshake or an answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts whatever certificate the server shows (the tests compare it with the one they
/// expect), but still checks the handshake signatures: the server must hold the key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a client offers in its hello.
#[derive(Debug, Clone, Default)]
pub struct Hello {
    /// The SNI name; `None`: no SNI (the client connects by IP address).
    pub sni: Option<String>,
    /// ALPN protocols offered, e.g. `[b"h2", b"http/1.1"]`; empty: no ALPN.
    pub alpn: Vec<Vec<u8>>,
    /// Only TLS 1.2 (to test `min_version: "1.3"`).
    pub tls12_only: bool,
}

/// One TLS connection to dyegate, speaking HTTP/1.1 with keep-alive.
pub struct TlsClient {
    stream: BufReader<TlsStream<TcpStream>>,
}

impl TlsClient {
    /// Connects with `sni` (or none), offering http/1.1 by ALPN.
    pub async fn connect(addr: SocketAddr, sni: Option<&str>) -> std::io::Result<TlsClient> {
        TlsClient::connect_with(
            addr,
            Hello {
                sni: sni.map(str::to_string),
                alpn: vec![b"http/1.1".to_vec()],
                tls12_only: false,
            },
        )
        .await
    }

    pub async fn connect_with(addr: SocketAddr, hello: Hello) -> std::io::Result<TlsClient> {
        let versions: &[&'static rustls::SupportedProtocolVersion] = if hello.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(std::io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth();
        config.alpn_protocols = hello.alpn;
        config.enable_sni = hello.sni.is_some();
        let name = match &hello.sni {
            Some(n) => ServerName::try_from(n.clone()).map_err(std::io::Error::other)?,
            None => ServerName::IpAddress(addr.ip().into()),
        };
        let connect = async {
            let tcp = TcpStream::connect(addr).await?;
            TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
        };
        let stream = tokio::time::timeout(IO_TIMEOUT, connect)
            .await
            .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
        Ok(TlsClient {
            stream: BufReader::new(stream),
        })
    }

    /// The DER of the leaf certificate the server showed.
    pub fn peer_leaf(&self) -> CertificateDer<'static> {
        let (_, conn) = self.stream.get_ref().get_ref();
        conn.peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
            .expect("a TLS server always shows a certificate")
    }

    /// The ALPN protocol agreed, if any.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        let (_, conn) = self.stream.get_ref().get_ref();
        conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// `GET path` with `Host: host` on this connection (kept alive); the status and body.
    pub async fn get(&mut self, host: &str, path: &str) -> std::io::Result<(u16, String)> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        tokio::time::timeout(IO_TIMEOUT, self.exchange(request.as_bytes()))
            .await
            .map_err(|_| std::io::Error::other("no answer in time"))?
    }

    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<(u16, String)> {
        self.stream.get_mut().write_all(request).await?;
        self.stream.get_mut().flush().await?;
        let mut status_line = String::new();
        if self.stream.read_line(&mut status_line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before an answer",
            ));
        }
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(std::io::Error::other)?;
                }
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// What `curl` saw of one request over TLS.
#[derive(Debug)]
pub struct CurlOutput {
    /// `%{http_code}` (0 when the handshake or connection failed).
    pub status: u16,
    /// `%{http_version}`: `1.1` or `2`.
    pub http_version: String,
    pub body: String,
    /// curl's stderr (with `-v`: the certificate it got).
    pub stderr: String,
    pub exit_code: Option<i32>,
}

/// `curl https://NAME:PORT/path --resolve NAME:PORT:127.0.0.1 --cacert CA` plus `extra`
/// (e.g. `--http2`, `--http1.1`), verifying the certificate against the test CA.
pub fn curl_https(
    addr: SocketAddr,
    name: &str,
    path: &str,
    ca: &Path,
    extra: &[&str],
) -> CurlOutput {
    let port = addr.port();
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "10"])
        .arg("--resolve")
        .arg(format!("{name}:{port}:{}", addr.ip()))
        .arg("--cacert")
        .arg(ca)
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(extra)
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .expect("running curl (apt-get install curl)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    let mut last = last.split_whitespace();
    CurlOutput {
        status: last.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        http_version: last.next().unwrap_or_default().to_string(),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        exit_code: out.status.code(),
    }
}

/// A self-signed certificate for `names` valid from `not_before` to `not_after` (seconds from
/// now, negative: in the past): (cert PEM, key PEM).
pub fn self_signed_valid(names: &[&str], not_before: i64, not_after: i64) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("certificate params");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::seconds(not_before);
    params.not_after = now + time::Duration::seconds(not_after);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    (cert.pem(), key.serialize_pem())
}
