//! One active health check: a TCP connect, or an HTTP/1.1 `GET` whose status is checked. The
//! whole check, connect included, is bounded by the check's timeout.

use crate::routing::CheckKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the target passed the check within `timeout`. `name` (`NAME:PORT` of a target a DNS
/// name gave) is the `Host` of an HTTP check that names none; else the address is.
pub async fn probe(
    addr: SocketAddr,
    kind: &CheckKind,
    timeout: Duration,
    name: Option<&str>,
) -> bool {
    tokio::time::timeout(timeout, run(addr, kind, name))
        .await
        .unwrap_or(false)
}

async fn run(addr: SocketAddr, kind: &CheckKind, name: Option<&str>) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let CheckKind::Http { path, host, expect } = kind else {
        return true;
    };
    let host = (host.as_deref().or(name)).map_or_else(|| addr.to_string(), str::to_string);
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: dyegate-health-check\r\nconnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    match read_status(&mut stream).await {
        Some(status) if expect.is_empty() => (200..300).contains(&status),
        Some(status) => expect.contains(&status),
        None => false,
    }
}

/// The status code of the response's status line (`HTTP/1.x NNN ...`).
async fn read_status(stream: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::with_capacity(64);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 4096 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf)
}

fn parse_status_line(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|b| *b == b'\n').next()?;
    let mut parts = line.split(|b| *b == b' ');
    let version = parts.next()?;
    if !version.starts_with(b"HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_status_line;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 500 X\r\n"), Some(500));
        assert_eq!(parse_status_line(b"HTTP/2 200\r\n"), None);
        assert_eq!(parse_status_line(b"garbage\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 20\r\n"), None);
    }
}
