//! A real etcd (Debian's `etcd-server`) for the fleet tests: one member on free loopback
//! ports with a temp data dir, killed on drop, stoppable and restartable on the same dir and
//! ports (for "etcd stopped" tests). `etcdctl` runs against it for writes behind dyegate's back.

pub mod fleet;
pub mod rollout;

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::ports::free_addr;
use crate::wait::wait_until;

/// How long etcd may take to answer after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct EtcdServer {
    dir: TempDir,
    client: SocketAddr,
    peer: SocketAddr,
    child: Option<Child>,
    /// More `etcd` arguments (`--auth-token-ttl 2`).
    args: Vec<String>,
    /// `user:password` for etcdctl, once auth is enabled.
    user: Option<String>,
}

impl EtcdServer {
    /// Starts a fresh single-member cluster and waits until it answers.
    pub fn start() -> EtcdServer {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with more `etcd` arguments.
    pub fn start_with(args: &[&str]) -> EtcdServer {
        let dir = tempfile::Builder::new()
            .prefix("dyegate-etcd-")
            .tempdir()
            .expect("creating etcd's data dir");
        let mut etcd = EtcdServer {
            dir,
            client: free_addr(),
            peer: free_addr(),
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            user: None,
        };
        etcd.spawn();
        etcd
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("opening etcd.log");
        let (client, peer) = (
            format!("http://{}", self.client),
            format!("http://{}", self.peer),
        );
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("t={peer}")])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning etcd (apt-get install etcd-server): {e}"));
        self.child = Some(child);
        let ready = wait_until(START_TIMEOUT, || {
            TcpStream::connect_timeout(&self.client, Duration::from_millis(200)).is_ok()
                && self.ctl(&["endpoint", "health"]).status.success()
        });
        assert!(
            ready,
            "etcd did not answer within {START_TIMEOUT:?}\n{}",
            self.log()
        );
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.client)
    }

    /// Kills the member (SIGKILL); its data stays for [`start_again`](Self::start_again).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the stopped member again on the same data dir and ports.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "etcd is still running");
        self.spawn();
    }

    /// Enables authentication with one user, `root` (all permissions) with `password`; etcdctl
    /// uses it from then on.
    pub fn enable_auth(&mut self, password: &str) {
        self.ctl_ok(&["user", "add", &format!("root:{password}")]);
        self.ctl_ok(&["auth", "enable"]);
        self.user = Some(format!("root:{password}"));
    }

    /// Runs `etcdctl ARGS...` against this member.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(self.user.iter().map(|u| format!("--user={u}")))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running etcdctl (apt-get install etcd-client): {e}"))
    }

    /// `etcdctl put KEY VALUE` of a value that need not be UTF-8 (a byte string, as etcd takes).
    pub fn put_bytes(&self, key: &str, value: &[u8]) {
        use std::os::unix::ffi::OsStrExt;
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(["put", "--", key])
            .arg(std::ffi::OsStr::from_bytes(value))
            .output()
            .unwrap_or_else(|e| panic!("running etcdctl (apt-get install etcd-client): {e}"));
        assert!(
            out.status.success(),
            "etcdctl put {key} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `etcdctl ARGS...` that must succeed; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.ctl_ok(&["get", key, "--print-value-only"]);
        let v = out.trim_end_matches('\n');
        (!out.is_empty()).then(|| v.to_string())
    }

    /// The store's current revision.
    pub fn revision(&self) -> u64 {
        let out = self.ctl_ok(&["endpoint", "status", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("endpoint status json");
        v[0]["Status"]["header"]["revision"]
            .as_u64()
            .expect("a revision")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `gateway.yaml` lines that take the table from `etcd` under `prefix`.
pub fn etcd_source_yaml(etcd: &EtcdServer, prefix: &str) -> String {
    format!(
        "source: {{ etcd: {{ endpoints: [\"{}\"], prefix: \"{prefix}\", dial_timeout_ms: 500 }} }}\n",
        etcd.endpoint()
    )
}
