//! Live reload triggers end to end: an edit in place, SIGHUP, a rename-write, a ConfigMap
//! `..data` symlink swap and a file caught half-written all reach the running gateway; a bad
//! edit never does, and says where it is wrong.
//!
//! Every test starts a real `dyegate run` on a temp dir (debounce 200 ms, the default) with two
//! upstreams, `blue` and `green`, and one catch-all route; an edit moves that route from one to
//! the other and the test polls with requests until it sees the answer change.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dyegate_suite::{poll_until, upstream_groups, Dyegate, GatewayConfig, Req, Upstream};
use http::StatusCode;

/// Long enough for a debug build on a busy two-core machine; the 1 s promise has its own test.
const SETTLE: Duration = Duration::from_secs(5);

struct Fixture {
    blue: Upstream,
    green: Upstream,
}

impl Fixture {
    fn new() -> Self {
        Self {
            blue: Upstream::start("blue"),
            green: Upstream::start("green"),
        }
    }

    /// routes.yaml sending everything to `group`.
    fn routes_to(&self, group: &str) -> String {
        format!(
            "{}routes:\n  - name: all\n    split: [{{ upstream: {group}, weight: 1 }}]\n",
            upstream_groups(&[("blue", &self.blue), ("green", &self.green)])
        )
    }

    fn config(&self, group: &str) -> GatewayConfig {
        GatewayConfig::new(&self.routes_to(group))
    }
}

/// The upstream that answers `GET /` now.
async fn answered_by(gw: &Dyegate) -> String {
    let resp = Req::get("/").send(gw.addr()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    resp.upstream()
        .expect("x-upstream on a proxied answer")
        .to_owned()
}

/// Polls `GET /` until `group` answers; returns how long that took. Panics with the gateway's
/// output after `timeout`.
async fn wait_for_upstream(gw: &Dyegate, group: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    if let Err(now) = poll_until(timeout, || answered_by(gw), |g| g == group).await {
        panic!(
            "still routed to {now}, not {group}, after {timeout:?}\n{}",
            gw.logs()
        );
    }
    start.elapsed()
}

#[tokio::test]
async fn an_edit_in_place_is_live_within_a_second() {
    let fx = Fixture::new();
    let gw = fx.config("blue").start();
    assert_eq!(answered_by(&gw).await, "blue");

    let saved = Instant::now();
    gw.config().write("routes.yaml", &fx.routes_to("green"));
    wait_for_upstream(&gw, "green", Duration::from_secs(1)).await;
    let took = saved.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");

    let status = gw.status().await;
    assert_eq!(status["version"], 2, "{status:#}");
    assert_eq!(status["trigger"], "file", "{status:#}");
    assert_eq!(status["matches_file"], true, "{status:#}");
    assert_eq!(status["reloads"]["applied"], 1, "{status:#}");
    assert_eq!(fx.green.request_count(), 1);
}

#[tokio::test]
async fn sighup_applies_a_file_changed_while_watching_is_off() {
    let fx = Fixture::new();
    let gw = fx
        .config("blue")
        .with_gateway_extra("reload: { watch: false }\n")
        .start();

    gw.config().write("routes.yaml", &fx.routes_to("green"));
    // Without a watcher nothing reads the file: the status can tell the two apart at once.
    let status = gw.status().await;
    assert_eq!(status["matches_file"], false, "{status:#}");
    assert_eq!(status["version"], 1, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");

    gw.signal(libc::SIGHUP);
    wait_for_upstream(&gw, "green", SETTLE).await;
    let status = gw.status().await;
    assert_eq!(status["version"], 2, "{status:#}");
    assert_eq!(status["trigger"], "sighup", "{status:#}");
    assert_eq!(status["matches_file"], true, "{status:#}");
}

#[tokio::test]
async fn sighup_never_kills_the_gateway() {
    let fx = Fixture::new();
    let mut gw = fx
        .config("blue")
        .with_gateway_extra("reload: { watch: false }\n")
        .start();

    // A burst with nothing to change: each handled signal is a no-op (bursts may coalesce).
    for _ in 0..20 {
        gw.signal(libc::SIGHUP);
    }
    let status = gw
        .wait_for_status(SETTLE, "no-op SIGHUP reload", |s| {
            s["reloads"]["noop"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(status["version"], 1, "{status:#}");

    // A broken file: rejected, and the process still serves.
    gw.config().write("routes.yaml", "routes: [");
    gw.signal(libc::SIGHUP);
    gw.wait_for_status(SETTLE, "failed SIGHUP reload", |s| {
        s["reloads"]["failed"] == 1
    })
    .await;

    assert!(gw.try_wait().is_none(), "dyegate exited\n{}", gw.logs());
    let (code, health) = gw.admin(http::Method::GET, "/healthz", None).await;
    assert_eq!(code, StatusCode::OK, "{health:#}");
    assert_eq!(answered_by(&gw).await, "blue");
}

#[tokio::test]
async fn a_rename_write_is_seen_and_the_watch_survives_it() {
    let fx = Fixture::new();
    let gw = fx.config("blue").start();

    // `mv routes.yaml.tmp routes.yaml`: the file gets a new inode; the watch is on the dir.
    gw.config()
        .write_and_rename("routes.yaml", &fx.routes_to("green"));
    wait_for_upstream(&gw, "green", SETTLE).await;

    // Again: a watch on the first inode would have gone with it.
    gw.config()
        .write_and_rename("routes.yaml", &fx.routes_to("blue"));
    wait_for_upstream(&gw, "blue", SETTLE).await;

    // vim's way: move the original to a backup, write a new file, delete the backup.
    let cfg = gw.config();
    std::fs::rename(cfg.routes_file(), cfg.path("routes.yaml~")).expect("backup rename");
    cfg.write("routes.yaml", &fx.routes_to("green"));
    std::fs::remove_file(cfg.path("routes.yaml~")).expect("removing the backup");
    wait_for_upstream(&gw, "green", SETTLE).await;

    let status = gw.status().await;
    assert_eq!(status["version"], 4, "{status:#}");
    assert_eq!(status["reloads"]["failed"], 0, "{status:#}");
}

/// Writes `<dir>/<name>/routes.yaml`: one ConfigMap payload dir.
fn configmap_payload(cfg: &GatewayConfig, name: &str, routes: &str) {
    std::fs::create_dir(cfg.path(name)).expect("creating the payload dir");
    cfg.write(&format!("{name}/routes.yaml"), routes);
}

/// Points `..data` at `target` the way the kubelet does: a new symlink `..data_tmp`, renamed
/// over `..data` (one atomic step), then the old payload removed.
fn configmap_swap(cfg: &GatewayConfig, target: &str, old: &str) {
    let tmp = cfg.path("..data_tmp");
    std::os::unix::fs::symlink(target, &tmp).expect("creating ..data_tmp");
    std::fs::rename(&tmp, cfg.path("..data")).expect("renaming ..data_tmp over ..data");
    std::fs::remove_dir_all(cfg.path(old)).expect("removing the old payload");
}

#[tokio::test]
async fn a_configmap_symlink_swap_is_seen() {
    let fx = Fixture::new();
    let cfg = fx.config("blue");
    // routes.yaml -> ..data/routes.yaml, ..data -> ..v1 (relative links, as mounted).
    std::fs::remove_file(cfg.routes_file()).expect("removing the plain routes.yaml");
    configmap_payload(&cfg, "..v1", &fx.routes_to("blue"));
    std::os::unix::fs::symlink("..v1", cfg.path("..data")).expect("..data link");
    std::os::unix::fs::symlink(Path::new("..data").join("routes.yaml"), cfg.routes_file())
        .expect("routes.yaml link");
    let gw = cfg.start();
    assert_eq!(answered_by(&gw).await, "blue");

    configmap_payload(gw.config(), "..v2", &fx.routes_to("green"));
    configmap_swap(gw.config(), "..v2", "..v1");
    wait_for_upstream(&gw, "green", SETTLE).await;

    configmap_payload(gw.config(), "..v3", &fx.routes_to("blue"));
    configmap_swap(gw.config(), "..v3", "..v2");
    wait_for_upstream(&gw, "blue", SETTLE).await;

    let status = gw.status().await;
    assert_eq!(status["version"], 3, "{status:#}");
    assert_eq!(status["matches_file"], true, "{status:#}");
    assert_eq!(status["reloads"]["failed"], 0, "{status:#}");
    // The path stays the one gateway.yaml names, not wherever the links pointed at start.
    assert_eq!(
        status["routes_file"],
        gw.config().routes_file().display().to_string()
    );
}

#[tokio::test]
async fn a_file_caught_half_written_fails_and_the_complete_write_applies() {
    let fx = Fixture::new();
    let gw = fx.config("blue").start();
    let complete = fx.routes_to("green");

    // The first bytes only, cut inside a quoted target address, as a reader racing a slow
    // writer would see them.
    let cut = complete.find("127.0.0.1").expect("a target address") + 4;
    gw.config().write("routes.yaml", &complete[..cut]);
    let status = gw
        .wait_for_status(SETTLE, "rejected half-written file", |s| {
            s["reloads"]["failed"] == 1
        })
        .await;
    let path = gw.config().routes_file().display().to_string();
    assert_eq!(
        status["last_error"]["errors"],
        serde_json::json!([format!(
            "{path}:2:21: invalid YAML: while scanning a quoted scalar, found unexpected end of stream"
        )]),
        "{status:#}"
    );
    assert_eq!(status["last_error"]["trigger"], "file", "{status:#}");
    assert_eq!(status["version"], 1, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");

    gw.config().write("routes.yaml", &complete);
    wait_for_upstream(&gw, "green", SETTLE).await;
    let status = gw.status().await;
    assert_eq!(status["version"], 2, "{status:#}");
    assert_eq!(status["matches_file"], true, "{status:#}");
    assert_eq!(status["reloads"]["applied"], 1, "{status:#}");
    assert_eq!(status["reloads"]["failed"], 1, "{status:#}");
}

#[tokio::test]
async fn a_bad_edit_keeps_the_old_routing_and_says_where_it_is_wrong() {
    let fx = Fixture::new();
    let gw = fx.config("blue").start();

    gw.config().write(
        "routes.yaml",
        &fx.routes_to("blue")
            .replace("upstream: blue", "upstream: bleu"),
    );
    let status = gw
        .wait_for_status(SETTLE, "rejected edit", |s| s["reloads"]["failed"] == 1)
        .await;

    let expected = format!(
        "{}:6:25: routes[0].split[0].upstream: found unknown upstream \"bleu\", expected one of `blue`, `green`",
        gw.config().routes_file().display()
    );
    assert_eq!(
        status["last_error"]["errors"],
        serde_json::json!([expected]),
        "{status:#}"
    );
    assert_eq!(status["version"], 1, "{status:#}");
    assert_eq!(status["matches_file"], false, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");

    // The log has the same line, and says which version keeps serving.
    let log = gw.stderr();
    assert!(
        log.lines().any(|l| l.ends_with(&format!("  {expected}"))),
        "no error line in the log:\n{log}"
    );
    assert!(
        log.contains("reload (file): rejected, version 1 keeps serving; 1 error(s):"),
        "{log}"
    );
}

#[tokio::test]
async fn a_busy_neighbour_file_does_not_hold_back_a_reload() {
    // Logs, pid files and editor swap files often share the config dir; the watcher sees the dir.
    let fx = Fixture::new();
    let gw = fx.config("blue").start();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let path = gw.config().path("neighbour.log");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::File::create(path).expect("creating neighbour.log");
            while !stop.load(Ordering::Relaxed) {
                let _ = writeln!(file, "busy");
                // time is tested: a neighbour written every 20 ms, busy for the whole reload.
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let saved = Instant::now();
    gw.config().write("routes.yaml", &fx.routes_to("green"));
    let seen = wait_for_upstream(&gw, "green", Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer thread");
    assert!(
        saved.elapsed() < Duration::from_secs(1),
        "took {:?} ({seen:?} polling)",
        saved.elapsed()
    );
}

#[tokio::test]
async fn an_edit_while_the_gateway_starts_is_not_lost() {
    // The edit lands after routes.yaml was loaded ("loaded ..." is logged) and, most likely,
    // before the watcher is in place: no event will ever tell about it.
    let fx = Fixture::new();
    let green = fx.routes_to("green");
    let gw = fx.config("blue").start_then(|gw| {
        let loaded = dyegate_suite::wait_until(SETTLE, || gw.stderr().contains(" loaded "));
        assert!(loaded, "no \"loaded\" line\n{}", gw.logs());
        gw.config().write("routes.yaml", &green);
    });
    wait_for_upstream(&gw, "green", SETTLE).await;
    let status = gw.status().await;
    assert_eq!(status["matches_file"], true, "{status:#}");
}

#[tokio::test]
async fn a_burst_of_writes_is_one_reload() {
    let fx = Fixture::new();
    let gw = fx.config("blue").start();

    // Five saves microseconds apart, well inside one debounce period: only the last counts.
    for group in ["green", "blue", "green", "blue", "green"] {
        gw.config().write("routes.yaml", &fx.routes_to(group));
    }
    wait_for_upstream(&gw, "green", SETTLE).await;
    let status = gw
        .wait_for_status(SETTLE, "matching file", |s| s["matches_file"] == true)
        .await;
    assert_eq!(status["version"], 2, "{status:#}");
    let r = &status["reloads"];
    assert_eq!(
        (&r["applied"], &r["failed"], &r["noop"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(0),
            &serde_json::json!(0)
        ),
        "{status:#}"
    );
}

#[tokio::test]
async fn a_deleted_routes_file_keeps_the_old_routing_until_it_is_back() {
    let fx = Fixture::new();
    let gw = fx.config("blue").start();

    std::fs::remove_file(gw.config().routes_file()).expect("removing routes.yaml");
    let status = gw
        .wait_for_status(SETTLE, "failed reload of a missing file", |s| {
            s["reloads"]["failed"] == 1
        })
        .await;
    assert_eq!(
        status["last_error"]["errors"],
        serde_json::json!([format!(
            "{}:0:0: cannot read file: No such file or directory (os error 2)",
            gw.config().routes_file().display()
        )]),
        "{status:#}"
    );
    assert_eq!(status["matches_file"], false, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");

    gw.config().write("routes.yaml", &fx.routes_to("green"));
    wait_for_upstream(&gw, "green", SETTLE).await;
}
