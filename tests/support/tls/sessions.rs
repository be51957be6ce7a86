//! TLS session resumption seen by `openssl s_client`, as an operator checks it: a full
//! handshake that saves its session (`-sess_out`), and a later one that offers it (`-sess_in`)
//! and says whether the server resumed it (`Reused`) or made a full handshake (`New`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// What one `openssl s_client` connection reported.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// `Reused` (the offered session was resumed) or `New`.
    pub reused: bool,
    /// `TLSv1.3`, `TLSv1.2`.
    pub protocol: String,
    /// The cipher suite, as OpenSSL names it (`TLS_AES_256_GCM_SHA384`).
    pub cipher: String,
    /// The answer's status line and headers (`Strict-Transport-Security: ...`).
    pub response_head: String,
    pub output: String,
}

/// One HTTPS request with `openssl s_client`: `-sess_out save` and/or `-sess_in offer`, and
/// `extra` options (`-tls1_2`, `-ciphersuites ...`).
pub fn s_client(
    addr: SocketAddr,
    sni: &str,
    save: Option<&Path>,
    offer: Option<&Path>,
    extra: &[&str],
) -> Handshake {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "openssl", "s_client", "-ign_eof", "-connect"])
        .arg(addr.to_string())
        .args(["-servername", sni])
        .args(extra);
    if let Some(f) = save {
        cmd.arg("-sess_out").arg(f);
    }
    if let Some(f) = offer {
        cmd.arg("-sess_in").arg(f);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running openssl (apt-get install openssl)");
    let request = format!("GET /session HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n");
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(request.as_bytes());
    }
    let out = child.wait_with_output().expect("openssl s_client");
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = output
        .lines()
        .find(|l| l.starts_with("New, ") || l.starts_with("Reused, "))
        .unwrap_or_else(|| {
            panic!(
                "no New/Reused line from openssl s_client:\n{output}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let words: Vec<&str> = summary.split(", ").collect();
    let response_head = match output.find("HTTP/1.1 ") {
        Some(i) => output[i..]
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    };
    Handshake {
        reused: words.first() == Some(&"Reused"),
        protocol: words.get(1).copied().unwrap_or_default().to_string(),
        cipher: words
            .get(2)
            .and_then(|c| c.strip_prefix("Cipher is "))
            .unwrap_or_default()
            .to_string(),
        response_head,
        output,
    }
}

/// `n` full handshakes, each saving its session into `<dir>/session-<i>.pem`; the files.
pub fn save_sessions(addr: SocketAddr, sni: &str, dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
    (0..n)
        .map(|i| {
            let file = dir.join(format!("session-{i}.pem"));
            let h = s_client(addr, sni, Some(&file), None, &[]);
            assert!(!h.reused, "a first handshake cannot resume:\n{}", h.output);
            assert!(file.exists(), "no session saved:\n{}", h.output);
            file
        })
        .collect()
}

/// How many of the saved `sessions` the server at `addr` resumes.
pub fn resumed(addr: SocketAddr, sni: &str, sessions: &[std::path::PathBuf]) -> usize {
    sessions
        .iter()
        .filter(|f| s_client(addr, sni, None, Some(f), &[]).reused)
        .count()
}
