//! The listening sockets an old process keeps while it watches the new one: duplicates of every
//! listening TCP socket it has when the upgrade starts, taken before Pingora closes its own
//! (after its 5 s of accepting). Held, they keep the sockets open and queueing connections
//! (nothing is refused) even if the new process dies; never accepted from. A revert sends
//! them to the old binary's new process over the upgrade socket, keyed as Pingora keys them.

use crate::downstream::layout::listener_key;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One held socket: Pingora's key for it, the duplicate, the socket's inode.
struct Held {
    key: String,
    fd: OwnedFd,
    inode: u64,
}

pub struct HeldSockets {
    held: Vec<Held>,
}

impl HeldSockets {
    /// Duplicates every listening TCP socket of this process. Pingora keys a socket by its
    /// address, and the `i`-th socket of one address (a `per_core` runtime's) by the address
    /// with `i` zeros before the port ([`listener_key`]); sockets of one address are alike to
    /// the kernel, so their order does not matter.
    pub fn take() -> HeldSockets {
        let mut by_addr: BTreeMap<SocketAddr, Vec<(i32, u64)>> = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return HeldSockets { held: Vec::new() };
        };
        let mut fds: Vec<(i32, u64)> = dir
            .filter_map(|e| {
                let e = e.ok()?;
                let fd: i32 = e.file_name().to_str()?.parse().ok()?;
                let inode = socket_inode(&std::fs::read_link(e.path()).ok()?)?;
                Some((fd, inode))
            })
            .collect();
        fds.sort();
        for (fd, inode) in fds {
            if let Some(addr) = listening_tcp(fd) {
                by_addr.entry(addr).or_default().push((fd, inode));
            }
        }
        let mut held = Vec::new();
        for (addr, fds) in by_addr {
            for (i, (fd, inode)) in fds.into_iter().enumerate() {
                // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor of this process; the result is
                // checked and owned.
                let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
                if dup >= 0 {
                    held.push(Held {
                        key: listener_key(addr, i),
                        // SAFETY: a descriptor fcntl just made, owned by nobody else.
                        fd: unsafe { OwnedFd::from_raw_fd(dup) },
                        inode,
                    });
                }
            }
        }
        HeldSockets { held }
    }

    pub fn keys(&self) -> Vec<&str> {
        self.held.iter().map(|h| h.key.as_str()).collect()
    }

    /// Closes the sockets `pid` does not hold (listeners removed from gateway.yaml, which the
    /// new process closed): they stop listening now, not at the end of the watch. Keeps them
    /// all when `pid`'s descriptors cannot be read.
    pub fn drop_unclaimed(&mut self, pid: u32) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return Vec::new();
        };
        let theirs: Vec<u64> = dir
            .filter_map(|e| socket_inode(&std::fs::read_link(e.ok()?.path()).ok()?))
            .collect();
        let (kept, dropped): (Vec<Held>, Vec<Held>) =
            self.held.drain(..).partition(|h| theirs.contains(&h.inode));
        self.held = kept;
        dropped.into_iter().map(|h| h.key).collect()
    }

    /// Sends every held socket to the process listening on `upgrade_sock` (Pingora's transfer,
    /// as an old process does on SIGQUIT).
    pub fn send(&self, upgrade_sock: &Path) -> Result<(), String> {
        let path = upgrade_sock
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", upgrade_sock.display()))?;
        let mut fds = pingora::server::Fds::new();
        for h in &self.held {
            fds.add(h.key.clone(), h.fd.as_raw_fd());
        }
        fds.send_to_sock(path)
            .map(drop)
            .map_err(|e| format!("cannot send the listening sockets to {path}: {e}"))
    }
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &Path) -> Option<u64> {
    let text = link.to_str()?;
    text.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The local address of `fd` when it is a listening TCP socket.
fn listening_tcp(fd: i32) -> Option<SocketAddr> {
    let int_opt = |name: libc::c_int| {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt into a c_int of the given length.
        let rc =
            unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut v).cast(), &mut len) };
        (rc == 0).then_some(v)
    };
    if int_opt(libc::SO_ACCEPTCONN)? != 1 || int_opt(libc::SO_TYPE)? != libc::SOCK_STREAM {
        return None;
    }
    // SAFETY: a zeroed sockaddr_storage is a valid buffer for getsockname.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname into a sockaddr_storage of the given length.
    if unsafe { libc::getsockname(fd, (&raw mut storage).cast(), &mut len) } != 0 {
        return None;
    }
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: libc::sockaddr_in = unsafe { *(&raw const storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: libc::sockaddr_in6 = unsafe { *(&raw const storage).cast() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_held_under_pingora_keys_and_dropped_when_unclaimed() {
        let a = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let b = std::net::TcpListener::bind("[::1]:0");
        let addr = a.local_addr().expect("addr");
        // A connected (not listening) socket is not held.
        let _client = std::net::TcpStream::connect(addr).expect("connect");
        let held = HeldSockets::take();
        let keys = held.keys();
        assert!(keys.contains(&addr.to_string().as_str()), "{keys:?}");
        if let Ok(b) = &b {
            let v6 = b.local_addr().expect("addr");
            assert!(keys.contains(&v6.to_string().as_str()), "{keys:?}");
        }
        // Held, the socket keeps queueing after the original is closed.
        drop(a);
        assert!(std::net::TcpStream::connect(addr).is_ok());
        // Asked about a process that holds the same sockets (this one: the duplicates), none
        // is unclaimed.
        let mut held = held;
        let dropped = held.drop_unclaimed(std::process::id());
        assert!(dropped.is_empty(), "{dropped:?}");
    }
}
