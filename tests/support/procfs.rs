//! What `/proc` says about processes and sockets: liveness (a zombie counts as gone), signals,
//! command lines, and which listening socket (by inode) a process holds.
//!
//! A binary upgrade must move the very same listening socket from one process to the next; the
//! inode of that socket is what proves it was inherited and not bound again.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Whether `pid` is a running process (not gone, not a zombie waiting to be reaped).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends `signal` to `pid`; `Err` with the OS error when it fails (e.g. ESRCH).
pub fn signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The command line of `pid`, arguments joined by spaces; `None` once it is gone.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args.join(" "))
}

/// Every live process whose command line contains `needle` (e.g. a test's temp dir), sorted.
pub fn pids_with_cmdline_containing(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| alive(*pid) && cmdline(*pid).is_some_and(|c| c.contains(needle)))
        .collect();
    pids.sort_unstable();
    pids
}

/// The pid written in a pid file, `None` when the file is missing or holds no number.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The inodes of every socket `pid` holds open (`/proc/PID/fd/* -> socket:[INODE]`).
pub fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    fds.filter_map(|fd| {
        let target = std::fs::read_link(fd.ok()?.path()).ok()?;
        let target = target.to_str()?;
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// The inodes of the TCP sockets in state LISTEN on exactly `addr`, from `/proc/net/tcp` (IPv4)
/// or `/proc/net/tcp6` (IPv6). More than one means something bound the address again
/// (`SO_REUSEPORT`) instead of inheriting it.
pub fn listening_inodes(addr: SocketAddr) -> BTreeSet<u64> {
    let table = match addr.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).unwrap_or_default();
    let wanted = proc_net_address(addr);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            let cols: Vec<&str> = line.split_whitespace().collect();
            const LISTEN: &str = "0A";
            (cols.len() > 9 && cols[1].eq_ignore_ascii_case(&wanted) && cols[3] == LISTEN)
                .then(|| cols[9].parse().ok())
                .flatten()
        })
        .collect()
}

/// The inode of the one listening socket on `addr`; panics when there is none or more than one.
pub fn listener_inode(addr: SocketAddr) -> u64 {
    let inodes = listening_inodes(addr);
    assert_eq!(
        inodes.len(),
        1,
        "expected exactly one listening socket on {addr}, found inodes {inodes:?}"
    );
    *inodes.first().expect("one inode")
}

/// `addr` the way `/proc/net/tcp*` writes it: the address as the kernel stores it (32-bit words
/// in host byte order), in hex, then `:PORT` in hex.
fn proc_net_address(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => format!("{:08X}", u32::from_ne_bytes(v4.octets())),
        IpAddr::V6(v6) => v6
            .octets()
            .chunks_exact(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect(),
    };
    format!("{ip}:{:04X}", addr.port())
}

/// `VmRSS` of `pid` in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn finds_the_inode_of_a_listener_this_process_holds() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let inode = listener_inode(addr);
        assert!(socket_inodes(std::process::id()).contains(&inode));
        drop(listener);
        assert!(listening_inodes(addr).is_empty());
    }

    #[test]
    fn this_process_is_alive_and_its_cmdline_is_readable() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(cmdline(me).is_some_and(|c| !c.is_empty()));
        assert!(pids_with_cmdline_containing(&cmdline(me).unwrap_or_default()).contains(&me));
    }

    #[test]
    fn a_reaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        assert!(!alive(pid));
    }
}
