//! PROXY protocol senders in front of the gateway: a real HAProxy (Debian's `haproxy`, installed
//! by `tests/run.sh`) as a layer-4 balancer (TCP mode, one frontend per `server` option such as
//! `send-proxy-v2` or `send-proxy`, each on a free loopback port, killed on drop), and a v2
//! header written by hand for what HAProxy cannot send here (an IPv6 client on a machine
//! without IPv6).

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::ports::free_addr;
use crate::wait::wait_until;

/// How long HAProxy may take from spawn to listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Haproxy {
    child: Child,
    dir: TempDir,
    frontends: Vec<SocketAddr>,
}

impl Haproxy {
    /// HAProxy forwarding TCP to `backend`: frontend `i` connects with `server` options
    /// `options[i]` (e.g. `"send-proxy-v2"`).
    pub fn start(backend: SocketAddr, options: &[&str]) -> Haproxy {
        let dir = tempfile::Builder::new()
            .prefix("dyegate-haproxy-")
            .tempdir()
            .expect("creating HAProxy's dir");
        let frontends: Vec<SocketAddr> = options.iter().map(|_| free_addr()).collect();
        let mut cfg = String::from(
            "global\n    nbthread 1\n    maxconn 512\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n",
        );
        for (i, (front, option)) in frontends.iter().zip(options).enumerate() {
            cfg.push_str(&format!(
                "frontend fe{i}\n    bind {front}\n    default_backend be{i}\n\
                 backend be{i}\n    server gw {backend} {option}\n"
            ));
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("writing haproxy.cfg");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("haproxy.log");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning haproxy (apt-get install haproxy): {e}"));
        let mut haproxy = Haproxy {
            child,
            dir,
            frontends,
        };
        let ready = wait_until(START_TIMEOUT, || {
            haproxy.child.try_wait().ok().flatten().is_none()
                && (haproxy.frontends.iter())
                    .all(|f| TcpStream::connect_timeout(f, Duration::from_millis(200)).is_ok())
        });
        assert!(
            ready,
            "HAProxy did not listen on {:?} within {START_TIMEOUT:?}\n{}",
            haproxy.frontends,
            haproxy.log()
        );
        haproxy
    }

    /// Frontend `i`, the one with `options[i]`.
    pub fn frontend(&self, i: usize) -> SocketAddr {
        self.frontends[i]
    }

    /// What HAProxy wrote.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- haproxy log ---\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PROXY protocol v2 header (`PROXY` command, TCP) from `source` to `dest`, written by hand
/// as the spec lays it out; both of one family.
pub fn proxy_v2_header(source: SocketAddr, dest: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    let mut body = Vec::new();
    match (source, dest) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            h.push(0x11); // AF_INET, STREAM
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            h.push(0x21); // AF_INET6, STREAM
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
        }
        _ => panic!("a v2 header's addresses are of one family: {source}, {dest}"),
    }
    body.extend_from_slice(&source.port().to_be_bytes());
    body.extend_from_slice(&dest.port().to_be_bytes());
    h.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
    h.extend_from_slice(&body);
    h
}
