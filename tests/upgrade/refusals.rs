//! Upgrades that must be refused, end to end: invalid routes, a new binary that dies or never
//! opens the upgrade socket, stale or foreign pid files, a missing socket directory, an upgrade
//! already in progress. In each case the running gateway keeps serving, untouched.

use std::path::Path;
use std::time::Duration;

use dyegate_suite::load::{Load, Shape};
use dyegate_suite::procfs::{self, listener_inode};
use dyegate_suite::upgrade::under_load::*;
use dyegate_suite::upgrade::{write_executable, Upgradable, PID_FILE, UPGRADE_SOCK};
use dyegate_suite::Upstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_routes_refuse_the_upgrade_before_any_socket_moves() {
    let up = Upstream::start("stable");
    let config = config(&up);
    // The running gateway must not pick the broken file up itself.
    append_gateway(&config, "reload: { watch: false }\n");
    let gw = Upgradable::start(config).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    gw.config().write(
        "routes.yaml",
        &format!(
            "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n\
             routes:\n  - name: all\n    split: [{{ upstream: canary, weight: 1 }}]\n",
            up.target()
        ),
    );
    let check = gw.config().check();
    assert_eq!(check.code, Some(1), "{check}");
    let run = gw.upgrade(&["--wait-old"]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: {}new binary rejects the current configuration; nothing was \
             changed, pid {pid} keeps serving\n",
            check.stdout
        )
    );
    assert!(
        load.wait_for_more_ok(50, SERVES_WITHIN).await,
        "{}",
        load.report()
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

/// A stand-in for a new binary: `check` is the real one, `run` is `run_body` (shell).
fn fake_binary(gw: &Upgradable, run_body: &str) -> String {
    let real = dyegate_suite::gateway::dyegate_bin().display().to_string();
    let path = write_executable(
        gw.config(),
        "new-dyegate",
        &format!(
            "#!/bin/sh\n\
             if [ \"$1\" = check ]; then exec \"{real}\" \"$@\"; fi\n\
             {run_body}\n"
        ),
    );
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_binary_that_dies_at_start_leaves_the_old_one_serving() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    let binary = fake_binary(&gw, "echo \"cannot start: out of luck\" >&2\nexit 3");
    let run = gw.upgrade(&["--binary", &binary]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    let sock = gw.config().path(UPGRADE_SOCK);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: new process exited (exit status: 3) before opening the upgrade \
             socket {}; pid {pid} keeps serving.\n  | cannot start: out of luck\n",
            sock.display()
        )
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_binary_that_never_opens_the_upgrade_socket_is_stopped() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    let binary = fake_binary(&gw, "echo hanging >&2\nexec sleep 60");
    let run = gw.upgrade(&["--binary", &binary, "--timeout", "2"]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    let sock = gw.config().path(UPGRADE_SOCK);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: upgrade socket {} missing: the new process did not open it within \
             2s; it was stopped, pid {pid} keeps serving.\n  | hanging\n",
            sock.display()
        )
    );
    let started: u32 = run
        .output
        .line_starting_with("[2/6] started new process ")
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .unwrap_or_else(|| panic!("no started pid in {}", run.output));
    assert!(
        !procfs::alive(started),
        "the hanging new process was left running"
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_or_missing_pid_file_is_refused_and_the_gateway_keeps_serving() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let pid_file = gw.config().path(PID_FILE);
    let load = start_load(&gw).await;

    // A process that has exited.
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead = gone.id();
    gone.wait().expect("wait for true");
    gw.config().write(PID_FILE, &format!("{dead}\n"));
    let run = gw.upgrade(&[]).await;
    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: stale pid file {}: process {dead} is not running; start dyegate \
             with `dyegate run` instead of upgrading\n",
            pid_file.display()
        )
    );

    // A live process that is not dyegate (the pid was reused).
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    gw.config().write(PID_FILE, &format!("{}\n", other.id()));
    let run = gw.upgrade(&[]).await;
    assert!(
        procfs::alive(other.id()),
        "the upgrade signalled a foreign process"
    );
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: stale pid file {}: process {} is not dyegate\n",
            pid_file.display(),
            other.id()
        )
    );

    // No pid file at all.
    std::fs::remove_file(&pid_file).expect("removing the pid file");
    let run = gw.upgrade(&[]).await;
    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: cannot read pid file {}: No such file or directory (os error 2); \
             is dyegate running with this gateway.yaml?\n",
            pid_file.display()
        )
    );

    gw.config().write(PID_FILE, &format!("{pid}\n"));
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_upgrade_socket_directory_is_refused() {
    let up = Upstream::start("stable");
    let config = config(&up);
    // The running gateway only uses the upgrade socket when it hands over, so it starts fine.
    edit_gateway(
        &config,
        &format!("upgrade_sock: ./{UPGRADE_SOCK}"),
        &format!("upgrade_sock: ./no-such-dir/{UPGRADE_SOCK}"),
    );
    let gw = Upgradable::start(config).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());
    let load = start_load(&gw).await;

    let run = gw.upgrade(&[]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    let sock = gw.config().dir().join("no-such-dir").join(UPGRADE_SOCK);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: upgrade socket directory of {} does not exist; nothing was \
             changed, pid {pid} keeps serving\n",
            sock.display()
        )
    );
    let report = load.stop().await;
    assert_clean(&report, &gw);
    assert_untouched(&gw, pid, inode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgrade_while_another_is_in_progress_is_refused() {
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let inode = listener_inode(gw.addr());

    let lock_path = gw.config().path(&format!("{UPGRADE_SOCK}.lock"));
    let lock = hold_flock(&lock_path);
    let run = gw.upgrade(&[]).await;
    drop(lock);

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert_eq!(
        run.output.stderr,
        format!(
            "dyegate upgrade: an upgrade is already in progress (lock {} is held); nothing was \
             changed\n",
            lock_path.display()
        )
    );
    assert_untouched(&gw, pid, inode).await;
}

/// Takes the exclusive `flock` that `dyegate upgrade` takes; released when the file drops.
fn hold_flock(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    // SAFETY: flock(2) on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock {}", path.display());
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pid_file_naming_another_gateway_is_refused_and_that_gateway_left_alone() {
    // Two gateways on one host; this one's pid file is stale and its pid now belongs to the
    // other one (pids wrap: pid_max is often 32768).
    let up = Upstream::start("stable");
    let gw = Upgradable::start(config(&up)).await;
    let neighbour = Upgradable::start(config(&up)).await;
    let pid = gw.gateway().pid();
    let other = neighbour.gateway().pid();
    let load = Load::start(neighbour.addr(), Shape::default());
    assert!(load.wait_for_more_ok(50, SERVES_WITHIN).await);
    gw.config().write(PID_FILE, &format!("{other}\n"));

    let run = gw.upgrade(&["--timeout", "5"]).await;

    assert_eq!(run.output.code, Some(1), "{}", run.output);
    assert!(
        run.output.stderr.contains(&format!(
            "it names pid {other}, but the dyegate answering on"
        )),
        "{}",
        run.output
    );
    // The neighbour was not told to hand over: it still runs and serves, and does not drain.
    assert!(
        !neighbour
            .logs()
            .contains("SIGQUIT received, sending socks and gracefully exiting"),
        "the upgrade signalled the other gateway:\n{}",
        neighbour.logs()
    );
    let still =
        dyegate_suite::wait_until_async(PINGORA_CLOSE_TIMEOUT + Duration::from_secs(2), || async {
            !procfs::alive(other)
        })
        .await;
    assert!(!still, "the other gateway exited:\n{}", neighbour.logs());
    let report = load.stop().await;
    assert_clean(&report, &neighbour);
    gw.config().write(PID_FILE, &format!("{pid}\n"));
    assert_untouched(&gw, pid, listener_inode(gw.addr())).await;
}
