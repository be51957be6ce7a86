//! Stand-ins for a new binary that fails after the handover, for the revert tests: shell
//! scripts that run the real `dyegate` (so the handover itself is real) and then make the new
//! process fail in a chosen way, or run it on a config of their own.

use crate::gateway::{dyegate_bin, GatewayConfig};
use crate::upgrade::{write_executable, PID_FILE};

/// A shell fragment that waits until the new process serves (the pid file names a process other
/// than the one it named when the script started, and `/readyz` answers ready with that pid;
/// Pingora moves the old pid file aside first, so it is briefly missing), then runs `then` with
/// `$new` set to that pid; in the background, detached, so the script can return at once as the
/// pre-fork parent does.
fn after_the_new_process_serves(config: &GatewayConfig, then: &str) -> String {
    let readyz = format!("http://{}/readyz", config.admin_addr());
    format!(
        "old=$(cat {PID_FILE})\n\
         \"$real\" \"$@\" || exit $?\n\
         ( while :; do\n\
             new=$(cat {PID_FILE} 2>/dev/null)\n\
             [ -n \"$new\" ] && [ \"$new\" != \"$old\" ] && \
               curl -sf --max-time 1 {readyz} | grep -q \"\\\"pid\\\": $new\" && break\n\
             sleep 0.05\n\
           done\n\
           {then}\n\
         ) </dev/null >/dev/null 2>&1 &\n\
         exit 0\n"
    )
}

fn script(config: &GatewayConfig, name: &str, on_run: &str) -> String {
    let real = dyegate_bin().display().to_string();
    let path = write_executable(
        config,
        name,
        &format!(
            "#!/bin/sh\n\
             real=\"{real}\"\n\
             cd \"{}\"\n\
             if [ \"$1\" != run ]; then exec \"$real\" \"$@\"; fi\n\
             {on_run}",
            config.dir().display()
        ),
    );
    path.display().to_string()
}

/// A new binary whose process is killed (SIGKILL, as a crash) `seconds` after it took the
/// sockets and started serving.
pub fn crashing_after(config: &GatewayConfig, seconds: u32) -> String {
    // time is tested: the scenario is a binary that crashes this long after the handover.
    let then = format!("sleep {seconds}; kill -9 \"$new\"");
    script(
        config,
        "crashing-dyegate",
        &after_the_new_process_serves(config, &then),
    )
}

/// A new binary whose process stops (SIGSTOP: alive, holding its sockets, answering nothing)
/// `seconds` after it started serving.
pub fn freezing_after(config: &GatewayConfig, seconds: u32) -> String {
    // time is tested: the scenario is a binary that hangs this long after the handover.
    let then = format!("sleep {seconds}; kill -STOP \"$new\"");
    script(
        config,
        "freezing-dyegate",
        &after_the_new_process_serves(config, &then),
    )
}

/// A new binary that serves with `gateway_file` (in the config's dir) instead of the
/// gateway.yaml it is given: `check` still checks the real one.
pub fn serving_with(config: &GatewayConfig, gateway_file: &str) -> String {
    script(
        config,
        "misconfigured-dyegate",
        &format!(
            "exec \"$real\" run --upgrade --daemon -c \"{}\"\n",
            config.path(gateway_file).display()
        ),
    )
}
