//! What the Debian package and the runtime image install, checked without building them (the
//! package build is `deploy/debian/build-deb.sh`, minutes of release build): the shell
//! completions and man pages the binary generates are well-formed (bash -n, man), the packaged
//! gateway.yaml agrees with the systemd unit (PID file, writable paths, stop timeout) and passes
//! `dyegate check`, the image's gateway.yaml writes only to its volume, the Dockerfile's runtime
//! stage is non-root and holds the gateway alone, and every cargo-deb asset exists or is made by
//! the build script.

use std::path::Path;
use std::process::Command;

use dyegate_suite::gateway::workspace_root;
use dyegate_suite::tools::{describe, run_tool};
use dyegate_suite::{dyegate_cli, CliOutput};

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ok(out: CliOutput) -> String {
    assert_eq!(out.code, Some(0), "{out}");
    out.stdout
}

#[test]
fn completions_name_every_command_and_bash_parses_its_script() {
    let commands = [
        "run",
        "check",
        "diff",
        "status",
        "reload",
        "rollback",
        "versions",
        "upgrade",
        "schema",
        "completions",
        "man",
    ];
    for (shell, marker) in [
        ("bash", "complete -F _dyegate"),
        ("zsh", "#compdef dyegate"),
        ("fish", "complete -c dyegate"),
    ] {
        let script = ok(dyegate_cli(["completions", shell]));
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for c in commands {
            assert!(script.contains(c), "{shell} completion lacks {c}");
        }
    }
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("dyegate.bash");
    std::fs::write(&file, ok(dyegate_cli(["completions", "bash"]))).expect("write");
    let out = run_tool("bash", ["-n".as_ref(), file.as_os_str()], dir.path());
    assert!(out.status.success(), "{}", describe(&out));
    // Sourced, it registers the completion function for dyegate.
    let probe = format!("source {} && complete -p dyegate", file.display());
    let out = run_tool("bash", ["-c", &probe], dir.path());
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("_dyegate"));
}

#[test]
fn man_pages_render() {
    let dir = tempfile::tempdir().expect("tmp");
    let pages = dir.path().join("man");
    let out = dyegate_cli([Path::new("man"), Path::new("--dir"), &pages]);
    assert_eq!(out.code, Some(0), "{out}");
    for page in [
        "dyegate.1",
        "dyegate-run.1",
        "dyegate-schema.1",
        "dyegate-upgrade.1",
    ] {
        assert!(pages.join(page).is_file(), "{page} not written");
    }
    std::fs::write(dir.path().join("stdout.1"), ok(dyegate_cli(["man"]))).expect("write");
    for page in [pages.join("dyegate-schema.1"), dir.path().join("stdout.1")] {
        let out = Command::new("man")
            .args(["-P", "cat", "-l"])
            .arg(&page)
            .env("MANWIDTH", "100")
            .output()
            .expect("man (man-db) is installed by tests/run.sh");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("NAME"),
            "{}: {text}",
            page.display()
        );
    }
}

/// `Key=value` of a unit file.
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("unit has no {key}="))
}

#[test]
fn the_packaged_gateway_yaml_matches_the_systemd_unit() {
    let unit = read("conf/dyegate.service");
    let gw: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/debian/gateway.yaml")).expect("YAML");
    let str_of = |v: &serde_yaml::Value| v.as_str().expect("a path").to_string();
    assert_eq!(
        str_of(&gw["pingora"]["pid_file"]),
        unit_value(&unit, "PIDFile")
    );
    assert_eq!(str_of(&gw["routes"]), "/etc/dyegate/routes.yaml");
    let writable: Vec<&str> = unit_value(&unit, "ReadWritePaths")
        .split_whitespace()
        .collect();
    for path in [
        format!("{}/history.json", str_of(&gw["state_dir"])),
        str_of(&gw["reload"]["audit_log"]),
        str_of(&gw["pingora"]["pid_file"]),
        str_of(&gw["pingora"]["upgrade_sock"]),
        str_of(&gw["pingora"]["error_log"]),
    ] {
        assert!(
            writable.iter().any(|w| path.starts_with(&format!("{w}/"))),
            "{path} is outside ReadWritePaths {writable:?} (ProtectSystem=strict)"
        );
    }
    let stop: u64 = unit_value(&unit, "TimeoutStopSec")
        .parse()
        .expect("seconds");
    let drain = gw["pingora"]["grace_period_seconds"]
        .as_u64()
        .expect("grace")
        + gw["pingora"]["graceful_shutdown_timeout_seconds"]
            .as_u64()
            .expect("shutdown");
    assert!(
        stop > drain,
        "TimeoutStopSec {stop} <= drain {drain}: systemd would SIGKILL a drain"
    );
    // The packaged gateway.yaml is valid; routes given explicitly (/etc/dyegate is not here).
    let root = workspace_root();
    let out = dyegate_cli([
        Path::new("check"),
        Path::new("-c"),
        &root.join("deploy/debian/gateway.yaml"),
        &root.join("conf/routes.yaml"),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn the_runtime_image_is_the_gateway_alone_non_root_writing_only_to_its_volume() {
    let dockerfile = read("docker/Dockerfile");
    let stages: Vec<&str> = dockerfile.split("\nFROM ").collect();
    let runtime = stages.last().expect("stages");
    assert!(
        runtime.contains(" AS runtime"),
        "the runtime stage is the default (last) target"
    );
    assert!(
        dockerfile.contains(" AS demo"),
        "the demo stays a separate target"
    );
    assert!(runtime.contains("\nUSER 65532:65532"), "non-root");
    assert!(
        !runtime.contains("demo-upstream") && !runtime.contains("run-demo"),
        "gateway alone"
    );
    assert!(runtime.contains("ENTRYPOINT [\"/usr/local/bin/dyegate\"]"));
    let gw: serde_yaml::Value = serde_yaml::from_str(&read("docker/gateway.yaml")).expect("YAML");
    let volume = "/var/lib/dyegate/";
    assert!(runtime.contains("VOLUME [\"/var/lib/dyegate\"]"));
    for path in [
        &gw["reload"]["audit_log"],
        &gw["pingora"]["pid_file"],
        &gw["pingora"]["upgrade_sock"],
    ] {
        assert!(
            path.as_str().is_some_and(|p| p.starts_with(volume)),
            "{path:?} off the volume"
        );
    }
    assert_eq!(gw["state_dir"], "/var/lib/dyegate");
    let root = workspace_root();
    let out = dyegate_cli([
        Path::new("check"),
        Path::new("-c"),
        &root.join("docker/gateway.yaml"),
        &root.join("conf/routes.yaml"),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn every_cargo_deb_asset_exists_or_is_made_by_the_build_script() {
    let manifest = read("gateway/Cargo.toml");
    let script = read("deploy/debian/build-deb.sh");
    let mut sources = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("[\"") {
            sources.push(rest.split('"').next().expect("source").to_string());
        }
    }
    assert!(sources.len() >= 10, "assets found: {sources:?}");
    let gateway_dir = workspace_root().join("gateway");
    for source in &sources {
        if source == "target/release/dyegate" {
            assert!(script.contains("cargo build --release -p dyegate"));
        } else if let Some(generated) = source.strip_prefix("../target/assets/") {
            let stem = generated.trim_end_matches("*.1.gz").trim_end_matches('/');
            assert!(
                script.contains(&format!("$assets/{stem}")),
                "{source}: not made by build-deb.sh"
            );
        } else if let Some((dir, pattern)) = source.rsplit_once("/*") {
            let found = std::fs::read_dir(gateway_dir.join(dir))
                .expect(source)
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(pattern));
            assert!(found, "{source}: matches nothing");
        } else {
            assert!(gateway_dir.join(source).is_file(), "{source}: missing");
        }
    }
    for dir in [
        "../deploy/debian/maintainer-scripts/",
        "../target/assets/systemd/",
    ] {
        assert!(manifest.contains(dir), "{dir}");
    }
    assert!(script.contains("$assets/systemd/dyegate.service"));
}
