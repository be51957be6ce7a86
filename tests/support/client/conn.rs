//! One client connection to the gateway, kept alive across requests: HTTP/1.1 or h2c with prior
//! knowledge.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::Version;
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpSocket, TcpStream};

use super::request::{Req, ReqBody, Resp};

/// How long one request may take end to end before the test fails instead of hanging.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

enum Sender {
    Http1(http1::SendRequest<ReqBody>),
    Http2(http2::SendRequest<ReqBody>),
}

/// A keep-alive connection: every [`send`](Conn::send) reuses the same TCP connection.
pub struct Conn {
    addr: SocketAddr,
    sender: Sender,
}

async fn connect(source: Option<IpAddr>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = match source {
        None => TcpStream::connect(addr).await?,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await?
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Conn {
    /// Opens an HTTP/1.1 connection to `addr`.
    pub async fn http1(addr: SocketAddr) -> Self {
        Self::try_http1(None, addr)
            .await
            .unwrap_or_else(|e| panic!("HTTP/1.1 connection to {addr}: {e}"))
    }

    /// Opens an HTTP/1.1 connection to `addr` from local address `source`.
    pub async fn http1_from(source: IpAddr, addr: SocketAddr) -> Self {
        Self::try_http1(Some(source), addr)
            .await
            .unwrap_or_else(|e| panic!("HTTP/1.1 connection {source} -> {addr}: {e}"))
    }

    /// Opens an HTTP/2 connection to `addr` without TLS or upgrade (h2c prior knowledge).
    pub async fn h2c(addr: SocketAddr) -> Self {
        let stream = connect(None, addr)
            .await
            .unwrap_or_else(|e| panic!("TCP connection to {addr}: {e}"));
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap_or_else(|e| panic!("h2c handshake with {addr}: {e}"));
        tokio::spawn(conn);
        Self {
            addr,
            sender: Sender::Http2(sender),
        }
    }

    async fn try_http1(
        source: Option<IpAddr>,
        addr: SocketAddr,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let stream = connect(source, addr).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self {
            addr,
            sender: Sender::Http1(sender),
        })
    }

    /// Sends `req` and reads the whole response; panics on a transport error or after
    /// [`REQUEST_TIMEOUT`].
    pub async fn send(&mut self, req: Req) -> Resp {
        let addr = self.addr;
        match tokio::time::timeout(REQUEST_TIMEOUT, self.try_send(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => panic!("request to {addr} failed: {e}"),
            Err(_) => panic!("request to {addr} took longer than {REQUEST_TIMEOUT:?}"),
        }
    }

    /// Sends `req` and reads the whole response, returning transport errors.
    pub async fn try_send(&mut self, req: Req) -> Result<Resp, hyper::Error> {
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await?;
                sender
                    .send_request(req.into_http(self.addr, Version::HTTP_11))
                    .await?
            }
            Sender::Http2(sender) => {
                sender.ready().await?;
                sender
                    .send_request(req.into_http(self.addr, Version::HTTP_2))
                    .await?
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Resp {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        })
    }

    /// Whether the peer closed the connection (HTTP/1.1: no further request can be sent).
    pub fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::Http1(sender) => sender.is_closed(),
            Sender::Http2(sender) => sender.is_closed(),
        }
    }
}
