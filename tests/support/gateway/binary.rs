//! Where the `dyegate` binary under test comes from.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root: the suite package is the root package, so its manifest dir is the root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target dir, honouring `CARGO_TARGET_DIR` (relative values are relative to the root,
/// where cargo runs the tests from).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The profile the tests themselves were built with: `cargo test --release` (the measurements
/// in `benches/reload/figures.rs`) runs the release gateway.
const RELEASE: bool = !cfg!(debug_assertions);

/// Builds the gateway binary once per test process and returns its path.
///
/// `DYEGATE_BIN` overrides everything; otherwise `$CARGO build --workspace --bins` (or
/// `-p dyegate --bin dyegate --release` when the tests are a release build) runs once, so the tests always exercise
/// the current source even when only the suite was rebuilt.
pub fn dyegate_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("DYEGATE_BIN") {
            return PathBuf::from(bin);
        }
        build();
        target_dir()
            .join(if RELEASE { "release" } else { "debug" })
            .join("dyegate")
    })
}

fn build() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    // The debug build selects what `tests/run.sh` builds (`--workspace --bins`), so that after it
    // this build has nothing to do: `-p dyegate` alone resolves the shared dependencies' features
    // without the suite's, and would build Pingora, etcd-client and dyegate a second time (time,
    // and gigabytes of target/). The release build (benches only) builds the gateway alone.
    let args: &[&str] = if RELEASE {
        &["build", "-p", "dyegate", "--bin", "dyegate", "--release"]
    } else {
        &["build", "--workspace", "--bins"]
    };
    let mut command = Command::new(&cargo);
    command.args(args).current_dir(workspace_root());
    // What cargo sets for the test process describes the suite package, not the build: a
    // build script that watches one of these (ring's watches CARGO_PKG_NAME and
    // CARGO_MANIFEST_DIR) would otherwise see them change between `cargo test` and this build,
    // and the two would rebuild the TLS stack for each other every time.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if is_test_process_var(name) {
            command.env_remove(name);
        }
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {cargo:?} {}: {e}", args.join(" ")));
    assert!(
        output.status.success(),
        "`cargo {}` failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The variables cargo sets for a test process about the package under test.
fn is_test_process_var(name: &str) -> bool {
    [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CRATE_",
    ]
    .iter()
    .any(|p| name.starts_with(p))
        || matches!(
            name,
            "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR"
        )
}
