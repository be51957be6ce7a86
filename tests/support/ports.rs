//! Free loopback ports for listeners whose real port cannot be read back (Pingora's `:0`).
//!
//! A port is found by binding `127.0.0.1:0`, reading the port and closing the socket. The OS may
//! hand the same port out again soon after, so a process-wide set makes sure that no two callers
//! in one test binary ever get the same port; tests in parallel then never fight over a listener.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock};

/// Ports already handed out in this process.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A loopback port that was free a moment ago and was never returned before in this process.
///
/// Panics when the OS refuses to bind loopback at all (nothing a test could do about it).
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("binding 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("reading the address of a bound listener")
            .port();
        drop(listener);
        let mut seen = handed_out().lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(port) {
            return port;
        }
    }
    panic!("no unused loopback port after 1000 tries");
}

/// `127.0.0.1:<free_port()>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_a_port_twice() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
    }

    #[test]
    fn handed_out_port_can_be_bound() {
        let addr = free_addr();
        TcpListener::bind(addr).expect("the free port binds");
    }
}
