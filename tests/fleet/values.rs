//! An etcd value gets the checks a file gets, end to end with a real etcd: a value that is not
//! UTF-8 text, or a route key holding two routes, written behind dyegate's back (etcdctl), is a
//! revision rejected with its error located at the key, while the last good table serves.

use dyegate_suite::etcd::fleet::{answered_by, Fleet, PREFIX, SETTLE};
use dyegate_suite::Dyegate;
use serde_json::Value;

/// Waits until `/status` shows the revision etcd is at now as rejected; its last errors.
async fn rejected_now(fleet: &Fleet, gw: &Dyegate) -> (Value, Vec<String>) {
    let rejected = fleet.etcd.revision();
    let status = gw
        .wait_for_status(SETTLE, "the rejected revision", |s| {
            s["etcd"]["rejected_revision"] == rejected
        })
        .await;
    let errors = (status["last_error"]["errors"].as_array().cloned()).unwrap_or_default();
    let errors = errors.iter().filter_map(|e| e.as_str().map(str::to_owned));
    let errors = errors.collect();
    (status, errors)
}

/// How many lines `bytes` holds.
fn text_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_that_is_not_utf8_is_rejected_at_its_key_as_a_file_is() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let good = fleet.push(&config, "blue");
    let gw = config.start();
    let key = format!("{PREFIX}tables/{}/routes/000001-all", fleet.generation());
    let value = b"- name: all\n  match: { path_prefix: \"/r1\xff/\" }\n  split: [{ upstream: green, weight: 1 }]\n";
    fleet.etcd.put_bytes(&key, value);
    let (status, errors) = rejected_now(&fleet, &gw).await;
    assert_eq!(
        errors,
        [format!(
            "etcd:{key}:2:29: found a byte that is not UTF-8 text (offset 40), expected a YAML text file"
        )],
        "{status:#}"
    );
    assert_eq!(status["version"], good, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");

    // The same bytes in a routes file: refused by `push` (check's code), at the same place.
    let text = fleet.routes_to("blue");
    let routes = text.find("  - name: all").expect("the route");
    let mut file = text.into_bytes();
    file.truncate(routes);
    file.extend_from_slice(b"  - name: all\n    match: { path_prefix: \"/r1\xff/\" }\n    split: [{ upstream: green, weight: 1 }]\n");
    let path = gw.config().path("bytes.yaml");
    std::fs::write(&path, &file).expect("writing bytes.yaml");
    let before = fleet.etcd.revision();
    let out = gw
        .config()
        .cli(&["push", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(1), "{out}");
    let at = routes + 44;
    assert!(
        out.stderr.contains(&format!(
            "bytes.yaml:{}:31: found a byte that is not UTF-8 text (offset {at}), expected a YAML text file",
            text_lines(&file[..routes]) + 2
        )),
        "{out}"
    );
    assert_eq!(fleet.etcd.revision(), before, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holding_two_routes_is_rejected_at_its_key() {
    let fleet = Fleet::new();
    let config = fleet.config("blue");
    let good = fleet.push(&config, "blue");
    let gw = config.start();
    let key = format!("{PREFIX}tables/{}/routes/000001-all", fleet.generation());
    let route = fleet.etcd.get(&key).expect("the route");
    fleet.etcd.ctl_ok(&[
        "put",
        "--",
        &key,
        "- name: all\n  split: [{ upstream: blue, weight: 1 }]\n# a comment\n- name: two\n  split: [{ upstream: green, weight: 1 }]\n",
    ]);
    let (status, errors) = rejected_now(&fleet, &gw).await;
    assert_eq!(
        errors,
        [format!(
            "etcd:{key}:4:1: found a second entry \"- name: two\", expected one route, `- name: ...`"
        )],
        "{status:#}"
    );
    assert_eq!(status["version"], good, "{status:#}");
    assert_eq!(status["routes"], 1, "{status:#}");
    assert_eq!(answered_by(&gw).await, "blue");

    // The route put back as it was: applied, nothing rejected.
    fleet
        .etcd
        .ctl_ok(&["put", "--", &key, &format!("{route}\n")]);
    gw.wait_for_status(SETTLE, "nothing rejected", |s| {
        s["etcd"]["rejected_revision"] == Value::Null
    })
    .await;

    // Two upstreams in one upstream key: the same.
    let key = format!(
        "{PREFIX}tables/{}/upstreams/000001-blue",
        fleet.generation()
    );
    let blue = fleet.etcd.get(&key).expect("the blue upstream");
    fleet.etcd.ctl_ok(&[
        "put",
        "--",
        &key,
        &format!("{blue}\nextra: {{ targets: [\"127.0.0.1:9\"] }}\n"),
    ]);
    let (status, errors) = rejected_now(&fleet, &gw).await;
    assert_eq!(errors.len(), 1, "{status:#}");
    assert!(
        errors[0].starts_with(&format!("etcd:{key}:"))
            && errors[0].ends_with(
                ": found a second entry \"extra: { targets: [\\\"127.0.0.1:9\\\"] }\", expected one upstream, `NAME: { targets: [...] }`"
            ),
        "{status:#}"
    );
    assert_eq!(answered_by(&gw).await, "blue");
}
