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
    let mut child = Command::new(dyegate_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", dyegate_bin().display()));

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
