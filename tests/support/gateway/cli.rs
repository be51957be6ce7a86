//! Running the `dyegate` command line to completion (`check`, or `run` on a bad config).

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use super::binary::dyegate_bin;
use crate::wait::wait_until;

/// How long a command that should exit by itself may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// What one finished (or timed-out) `dyegate` invocation printed.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// `None` when the process did not exit within the deadline (it was killed) or died by signal.
    pub code: Option<i32>,
    /// Whether the process was still running at the deadline.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Lines of stdout followed by lines of stderr.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.stdout.lines().chain(self.stderr.lines())
    }

    /// The first output line (stdout or stderr) that starts with `prefix`.
    pub fn line_starting_with(&self, prefix: &str) -> Option<&str> {
        self.lines().find(|line| line.starts_with(prefix))
    }

    /// An admin command run against `addr`, where nothing listens: exit 1 and a message that
    /// names the address.
    pub fn assert_cannot_connect(&self, addr: &str) {
        assert_eq!(self.code, Some(1), "{self}");
        assert!(
            self.stderr.starts_with(&format!(
                "dyegate: cannot connect to the admin API at {addr}: "
            )),
            "{self}"
        );
    }
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "exit code: {:?}{}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" }
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Runs `dyegate ARGS...` in `cwd`, waiting at most `timeout` before killing it.
pub fn dyegate_cli_in<I, S>(cwd: &Path, args: I, timeout: Duration) -> CliOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(dyegate_bin());
    command.args(args).current_dir(cwd);
    run_to_exit(command, timeout)
}

/// Runs `dyegate ARGS...` in `cwd` with the variables `env` set (e.g. `DYEGATE_ADMIN_TOKEN`).
pub fn dyegate_cli_env<I, S>(cwd: &Path, args: I, env: &[(&str, &str)]) -> CliOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(dyegate_bin());
    command.args(args).current_dir(cwd);
    for (k, v) in env {
        command.env(k, v);
    }
    run_to_exit(command, CLI_TIMEOUT)
}

/// Runs `dyegate ARGS...` in `cwd` with a pseudo-terminal as its stdout and stderr (util-linux
/// `script`), as a person at a terminal runs it: `stdout` has both streams, lines end in
/// `\r\n`, and the exit code is dyegate's.
pub fn dyegate_cli_tty(cwd: &Path, args: &[&str]) -> CliOutput {
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(dyegate_bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| quote(&a))
        .collect();
    let mut command = Command::new("script");
    command
        .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .current_dir(cwd);
    run_to_exit(command, CLI_TIMEOUT)
}

/// Runs `command` (stdin empty, the outputs captured, no admin token from the caller's
/// environment: the suite's gateways choose theirs), waiting at most `timeout`.
fn run_to_exit(mut command: Command, timeout: Duration) -> CliOutput {
    if !command.get_envs().any(|(k, _)| k == "DYEGATE_ADMIN_TOKEN") {
        command.env_remove("DYEGATE_ADMIN_TOKEN");
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {:?}: {e}", command.get_program()));
    // Pipes are drained on threads so a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    let mut status: Option<ExitStatus> = None;
    let exited = wait_until(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    CliOutput {
        code: status.and_then(|s| s.code()),
        timed_out: !exited,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `dyegate ARGS...` in the workspace root with the default deadline.
pub fn dyegate_cli<I, S>(args: I) -> CliOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    dyegate_cli_in(super::binary::workspace_root(), args, CLI_TIMEOUT)
}
