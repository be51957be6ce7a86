//! A minimal blocking HTTP/1.1 client for the CLI's admin subcommands (`dyegate status`, ...):
//! one request per connection, `Connection: close`, read to EOF. Enough for a local JSON API,
//! and it keeps an HTTP client crate out of the gateway.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Where the admin API is: the name it was given as (the `Host` header and messages) and the
/// addresses it resolved to, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub addrs: Vec<SocketAddr>,
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Endpoint {
        Endpoint {
            name: addr.to_string(),
            addrs: vec![addr],
        }
    }
}

impl Endpoint {
    /// The first address that accepts a connection within `timeout`, or why none did.
    fn connect(&self, timeout: Duration) -> Result<TcpStream, String> {
        let mut last = None;
        for addr in &self.addrs {
            match TcpStream::connect_timeout(addr, timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some((addr, e)),
            }
        }
        let name = &self.name;
        Err(match last {
            Some((addr, e)) if addr.to_string() == *name => {
                format!("cannot connect to the admin API at {name}: {e}")
            }
            Some((addr, e)) => {
                format!("cannot connect to the admin API at {name} ({addr}): {e}")
            }
            None => format!("cannot connect to the admin API at {name}: no address"),
        })
    }
}

/// Sends one request; returns (status, body).
pub fn request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let limits = (Duration::from_secs(3), Duration::from_secs(30));
    request_within(endpoint, method, path, token, body, limits)
}

/// [`request`] with its own limits: (to connect, for each read of the answer).
pub fn request_within(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    (connect, read): (Duration, Duration),
) -> Result<(u16, String), String> {
    let mut s = endpoint.connect(connect)?;
    let addr = &endpoint.name;
    let _ = s.set_read_timeout(Some(read));
    let body = body.unwrap_or("");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{auth}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("cannot read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed response from {addr}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("malformed status line from {addr}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
