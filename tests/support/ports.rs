//! Free loopback ports for listeners whose real port cannot be read back (Pingora's `:0`).
//!
//! Two ways a handed-out port used to be lost before its gateway bound it: the kernel gave it
//! to a `127.0.0.1:0` bind (the tests' own upstreams, a client's outgoing connection), or another
//! test process on the machine (two suites at once, a helper's run beside CI's) found the same
//! port free. So ports are handed out from below the kernel's ephemeral range, which `:0` binds
//! and outgoing connections never use, and each one is reserved for the life of the process by
//! an exclusive lock on a file named after it (`$TMPDIR/dyegate-test-ports/PORT`), which every
//! other test process respects; the kernel drops the lock when the process ends, however it ends.

use std::collections::HashSet;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Where handed-out ports come from: below the kernel's ephemeral range (32768-60999 by
/// default) and above the ports services usually have (and the ones the tests name on purpose).
fn range() -> (u16, u16) {
    static RANGE: OnceLock<(u16, u16)> = OnceLock::new();
    *RANGE.get_or_init(|| {
        let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(32768);
        let last = low.clamp(4000, 32000);
        (last.saturating_sub(12000).max(2000), last)
    })
}

/// Ports already handed out in this process, with the locks that reserve them.
fn handed_out() -> &'static Mutex<(HashSet<u16>, Vec<File>)> {
    static PORTS: OnceLock<Mutex<(HashSet<u16>, Vec<File>)>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new((HashSet::new(), Vec::new())))
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("dyegate-test-ports")
}

/// The port's lock, when no other process holds it.
fn reserve(port: u16) -> Option<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_dir().join(port.to_string()))
        .ok()?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    locked.then_some(file)
}

fn binds(addr: (Ipv4Addr, u16)) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// A loopback port that is free, was never returned before in this process, and is reserved
/// against every other test process until this one ends.
///
/// Panics when no port of the range can be had (nothing a test could do about it).
pub fn free_port() -> u16 {
    let _ = std::fs::create_dir_all(lock_dir());
    let (first, last) = range();
    let span = u32::from(last - first);
    // Processes start at different places of the range, so they rarely try the same ports.
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    let mut ports = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    let start = (seed.wrapping_add(ports.0.len() as u32 * 7)) % span;
    for i in 0..span {
        let port = first + ((start + i) % span) as u16;
        if ports.0.contains(&port) {
            continue;
        }
        let Some(lock) = reserve(port) else {
            continue;
        };
        // Free now: nothing listens on it (a server started outside the tests, a process of an
        // earlier run that is still ending). One probe at a time: two would fight each other.
        if !binds((Ipv4Addr::LOCALHOST, port)) || !binds((Ipv4Addr::UNSPECIFIED, port)) {
            continue;
        }
        ports.0.insert(port);
        ports.1.push(lock);
        return port;
    }
    panic!("no free loopback port in {first}-{last}");
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

    #[test]
    fn a_port_is_out_of_the_kernels_reach_and_reserved_against_other_processes() {
        let port = free_port();
        let (first, last) = range();
        assert!((first..last).contains(&port), "{port}");
        let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("the ephemeral range");
        let low: u16 = ephemeral
            .split_whitespace()
            .next()
            .and_then(|l| l.parse().ok())
            .expect("a number");
        assert!(port < low, "{port} is in the ephemeral range {ephemeral}");
        // A lock is per open file description: a second one, as another process would open,
        // is refused while this process holds the port.
        assert!(reserve(port).is_none(), "port {port} reserved twice");
    }
}
