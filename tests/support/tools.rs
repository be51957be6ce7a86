//! The external checkers of the toolbox tests (schemas, Kubernetes manifests, alert rules), all
//! installed by `tests/run.sh`: Python validators in a venv under `target/toolbox/venv`
//! (`check-jsonschema`, `kubernetes-validate`), the npm Prometheus Operator models under
//! `target/toolbox/node`, Debian's `promtool`, and `kubectl` (its built-in kustomize). A missing
//! tool fails the test with the command that installs it; nothing is skipped.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::gateway::workspace_root;

/// Where `tests/run.sh` installs the registry packages (`DYEGATE_TOOLBOX` overrides).
pub fn toolbox_dir() -> PathBuf {
    match std::env::var_os("DYEGATE_TOOLBOX") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/toolbox"),
    }
}

/// The path of `name`: the toolbox venv's `bin/` first, then `PATH`.
pub fn tool(name: &str) -> PathBuf {
    let venv = toolbox_dir().join("venv/bin").join(name);
    if venv.exists() {
        return venv;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{name} is not installed: run ./tests/run.sh once (it installs the toolbox checkers: \
         pip packages into {}, Debian's prometheus for promtool, npm models into {})",
        toolbox_dir().join("venv").display(),
        toolbox_dir().join("node").display()
    );
}

/// Runs `name ARGS...` in `cwd` to completion.
pub fn run_tool<I, S>(name: &str, args: I, cwd: &Path) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let path = tool(name);
    Command::new(&path)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()))
}

/// Stdout and stderr of a finished tool, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
