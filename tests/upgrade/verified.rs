//! `dyegate upgrade --expect-sha256`: a binary with another sha256 is refused before anything
//! runs, and a matching one runs from the bytes that were checked, whatever happens to the file
//! afterwards.

use std::path::Path;

use dyegate_suite::procfs::listener_inode;
use dyegate_suite::upgrade::under_load::*;
use dyegate_suite::upgrade::{write_executable, Upgradable};
use dyegate_suite::Upstream;

/// `sha256sum FILE`'s digest, as an operator gets it.
fn sha256sum(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binary_with_another_sha256_is_refused_before_anything_runs() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    // A new binary that records every time it is run, for any command (check included).
    let runs = gw.config().path("runs");
    let real = dyegate_suite::gateway::dyegate_bin().display().to_string();
    let binary = write_executable(
        gw.config(),
        "new-dyegate",
        &format!(
            "#!/bin/sh\necho \"$1\" >> {}\nexec \"{real}\" \"$@\"\n",
            runs.display()
        ),
    );
    let actual = sha256sum(&binary);
    let expected = sha256sum(Path::new(&real));
    assert_ne!(actual, expected);

    let path = binary.display().to_string();
    let run = gw
        .upgrade(&[
            "--binary",
            &path,
            "--expect-sha256",
            &expected.to_uppercase(),
        ])
        .await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(run.output.stdout, "", "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: {path}: sha256 is {actual}, expected {expected} (--expect-sha256); \
             nothing was started or signalled, pid {pid} keeps serving\n"
        )
    );
    assert!(
        !runs.exists(),
        "the refused binary ran: {}",
        gw.config().read("runs")
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;

    // Not a sha256 at all: a usage error, before anything is read.
    let run = gw
        .upgrade(&["--binary", &path, "--expect-sha256", "12ab"])
        .await;
    assert_eq!(run.output.code, Some(2), "{}", run.output);
    assert!(
        run.output.stderr.contains(
            "found \"12ab\", expected a sha256 of 64 hex digits (as `sha256sum FILE` prints)"
        ),
        "{}",
        run.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_runs_is_the_checked_copy_even_when_the_file_changes_after_the_check() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let load = start_load(&gw).await;

    // The new binary's `check` replaces the file on disk by one that fails: a time-of-check gap
    // would run that one for `run --upgrade`.
    let real = dyegate_suite::gateway::dyegate_bin().display().to_string();
    let path = gw.config().path("new-dyegate");
    let binary = write_executable(
        gw.config(),
        "new-dyegate",
        &format!(
            "#!/bin/sh\n\
             if [ \"$1\" = check ]; then printf '#!/bin/sh\\necho replaced >&2\\nexit 7\\n' > {}; fi\n\
             exec \"{real}\" \"$@\"\n",
            path.display()
        ),
    );
    let sha = sha256sum(&binary);
    let given = binary.display().to_string();
    let run = gw
        .upgrade(&["--binary", &given, "--expect-sha256", &sha, "--wait-old"])
        .await;

    assert_eq!(run.output.code, Some(0), "{}\n{}", run.output, gw.logs());
    assert_eq!(
        run.output.line_starting_with("[1/6] ").map(str::to_string),
        Some(format!(
            "[1/6] running dyegate: pid {} ({})",
            gw.gateway().pid(),
            gw.config().path("dyegate.pid").display()
        ))
    );
    assert!(
        run.output.stdout.contains(&format!(
            "[1/6] {given}: sha256 {sha} as expected; running a private copy of it\n"
        )),
        "{}",
        run.output
    );
    assert!(
        gw.config().read("new-dyegate").contains("replaced"),
        "the check did not replace the file"
    );
    let new = run.new_pid.expect("a new pid");
    assert_eq!(gw.serving_pid(), Some(new));
    let report = load.stop().await;
    assert_clean(&report, &gw);

    // And the real binary itself, checked and run from its copy: the new process's executable
    // is the sealed memory file, not the path.
    let sha = sha256sum(Path::new(&real));
    let run = gw
        .upgrade(&["--binary", &real, "--expect-sha256", &sha])
        .await;
    assert_eq!(run.output.code, Some(0), "{}\n{}", run.output, gw.logs());
    let new = run.new_pid.expect("a new pid");
    let exe = std::fs::read_link(format!("/proc/{new}/exe")).expect("/proc/PID/exe");
    assert!(
        exe.display()
            .to_string()
            .starts_with("/memfd:dyegate-upgrade"),
        "{}",
        exe.display()
    );
    // The copy's descriptor was closed by the new process (only the mapping keeps it).
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{new}/fd"))
        .expect("/proc/PID/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.display().to_string())
        .filter(|t| t.starts_with("/memfd:dyegate-upgrade"))
        .collect();
    assert!(fds.is_empty(), "{fds:?}");
}
