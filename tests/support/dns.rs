//! A real DNS server on loopback whose records a test changes: Debian's `dnsmasq` (package
//! `dnsmasq-base`, installed by `tests/run.sh`), in the foreground on a port from
//! [`free_port`](crate::ports::free_port), answering only from a hosts file of its own
//! (`--addn-hosts`, re-read on SIGHUP) for names under `.test` (others: NXDOMAIN); killed on
//! drop, its log printed when a test fails.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::ports::free_port;
use crate::wait::wait_until;

/// How long dnsmasq may take from spawn to listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Dnsmasq {
    child: Option<Child>,
    dir: TempDir,
    addr: SocketAddr,
}

impl Dnsmasq {
    /// dnsmasq answering for `records` (name, IPv4 or IPv6 address; a name may come more than
    /// once), TTL 0.
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        let dir = tempfile::Builder::new()
            .prefix("dyegate-dnsmasq-")
            .tempdir()
            .expect("creating dnsmasq's dir");
        // dnsmasq run as root drops to `nobody`, and re-reads the hosts file as that user.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod dnsmasq's dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut dns = Dnsmasq {
            child: None,
            dir,
            addr,
        };
        dns.write_hosts(records);
        let log = std::fs::File::create(dns.path("dnsmasq.log")).expect("dnsmasq.log");
        let child = Command::new("dnsmasq")
            .args(["-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts"])
            .args(["--listen-address=127.0.0.1", "--bind-interfaces"])
            .arg(format!("--port={}", addr.port()))
            .arg("--local=/test/")
            .arg("--log-queries")
            .arg("--log-facility=-")
            .arg(format!("--addn-hosts={}", dns.path("hosts").display()))
            .arg(format!("--pid-file={}", dns.path("dnsmasq.pid").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning dnsmasq (apt-get install dnsmasq-base): {e}"));
        dns.child = Some(child);
        let ready = wait_until(START_TIMEOUT, || {
            dns.running()
                && TcpStream::connect_timeout(&dns.addr, Duration::from_millis(200)).is_ok()
        });
        assert!(
            ready,
            "dnsmasq did not listen on {} within {START_TIMEOUT:?}\n{}",
            dns.addr,
            dns.log()
        );
        dns
    }

    /// Where it answers (UDP and TCP): for gateway.yaml `dns.nameservers`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the records and tells dnsmasq to read them again (SIGHUP). The change is seen
    /// by the next query dnsmasq answers after it has read the file.
    pub fn set_records(&self, records: &[(&str, &str)]) {
        self.write_hosts(records);
        let pid = self.child.as_ref().expect("dnsmasq runs").id();
        // SAFETY: a signal to the child this guard spawned and still owns.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0, "SIGHUP to dnsmasq");
    }

    /// Stops the server (SIGKILL): lookups now fail.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What dnsmasq wrote (its queries included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("dnsmasq.log")).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The hosts file, written whole and renamed into place (never read half-written).
    fn write_hosts(&self, records: &[(&str, &str)]) {
        let text: String = records
            .iter()
            .map(|(name, ip)| format!("{ip} {name}\n"))
            .collect();
        let tmp = self.path("hosts.tmp");
        std::fs::write(&tmp, text).expect("writing dnsmasq's hosts");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
            .expect("chmod hosts");
        std::fs::rename(&tmp, self.path("hosts")).expect("renaming dnsmasq's hosts");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- dnsmasq log ---\n{}", self.log());
        }
        self.stop();
    }
}
