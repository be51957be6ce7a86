use super::*;
use crate::config::routes_from_text;

const FILE: &str = "\
upstreams:
  shop-stable: { targets: [\"127.0.0.1:9001\"] }
  shop-canary:
    targets:
      - 127.0.0.1:9002
routes:
  - name: shop
    match: { path_prefix: / }
    split:
      - { upstream: shop-stable, weight: 95 }
      - { upstream: shop-canary, weight: 5 }
  # the API
  - name: \"api v2\"
    match: { path_prefix: /api }
    split: [{ upstream: shop-canary, weight: 1 }]
";

fn full(dir: &str, entries: &[Entry]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| (format!("{dir}{}", e.key), e.value.clone()))
        .collect()
}

#[test]
fn entries_are_keyed_in_file_order_and_dedented() {
    let entries = entries_of(FILE).expect("plain layout");
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "upstreams/000001-shop-stable",
            "upstreams/000002-shop-canary",
            "routes/000001-shop",
            "routes/000002-api_v2"
        ]
    );
    assert_eq!(
        entries[1].value,
        "shop-canary:\n  targets:\n    - 127.0.0.1:9002\n"
    );
    assert!(entries[2].value.starts_with("- name: shop\n  match:"));
    assert!(entries[2].value.ends_with("# the API\n"));
}

#[test]
fn assembled_text_is_the_same_table() {
    let dir = generation_dir("/dyegate/prod/", "g1");
    let a = assemble(&dir, full(&dir, &entries_of(FILE).expect("cut"))).expect("assemble");
    assert_eq!(a.text, FILE);
    // Any order of keys assembles the same.
    let mut kvs = full(&dir, &entries_of(FILE).expect("cut"));
    kvs.reverse();
    assert_eq!(assemble(&dir, kvs).expect("assemble").text, FILE);
}

#[test]
fn errors_name_the_key_and_its_own_line() {
    let dir = generation_dir("/dyegate/prod/", "g1");
    let mut kvs = full(&dir, &entries_of(FILE).expect("cut"));
    kvs[2].1 = "- name: shop\n  match: { path_prefix: / }\n  split:\n    - { upstream: shop-stable, weight: -5 }\n".into();
    let a = assemble(&dir, kvs).expect("assemble");
    let errors = routes_from_text("etcd", a.text.clone().into_bytes(), None)
        .err()
        .expect("invalid");
    let errors = a.locate_all(errors);
    assert_eq!(
        errors.to_string(),
        "etcd:/dyegate/prod/tables/g1/routes/000001-shop:4:40: routes[0].split[0].weight: found -5, expected a whole number >= 0"
    );
}

#[test]
fn a_value_that_is_not_one_entry_is_located_at_its_key() {
    let dir = generation_dir("/p/", "g");
    let kvs = vec![
        (format!("{dir}routes/000001-a"), "name: a\n".to_string()),
        (format!("{dir}upstreams/000001-u"), "".to_string()),
        (format!("{dir}other"), "x: 1\n".to_string()),
    ];
    let errors = assemble(&dir, kvs).expect_err("invalid").to_string();
    assert_eq!(
        errors,
        "etcd:/p/tables/g/other:1:1: found a key that is neither upstreams/... nor routes/..., expected only those under a table\n\
         etcd:/p/tables/g/routes/000001-a:1:1: found \"name: a\", expected one route, `- name: ...`\n\
         etcd:/p/tables/g/upstreams/000001-u:1:1: found an empty value, expected one upstream, `NAME: { targets: [...] }`"
    );
}

#[test]
fn a_value_holding_two_entries_is_located_at_the_second() {
    let dir = generation_dir("/p/", "g");
    let kvs = vec![
        (
            format!("{dir}routes/000001-a"),
            "- name: a\n  split: [{ upstream: u, weight: 1 }]\n# note\n\n- name: b\n".to_string(),
        ),
        (
            format!("{dir}routes/000002-c"),
            "  - name: c\n    split: []\n  - name: d\n".to_string(),
        ),
        (
            format!("{dir}upstreams/000001-u"),
            "u: { targets: [\"127.0.0.1:1\"] }\n---\n".to_string(),
        ),
        (
            format!("{dir}upstreams/000002-v"),
            "v:\n  targets:\n    - 127.0.0.1:1\n  # trailing comment\n".to_string(),
        ),
    ];
    let errors = assemble(&dir, kvs).expect_err("invalid").to_string();
    assert_eq!(
        errors,
        "etcd:/p/tables/g/routes/000001-a:5:1: found a second entry \"- name: b\", expected one route, `- name: ...`\n\
         etcd:/p/tables/g/routes/000002-c:3:1: found a second entry \"- name: d\", expected one route, `- name: ...`\n\
         etcd:/p/tables/g/upstreams/000001-u:2:1: found a second entry \"---\", expected one upstream, `NAME: { targets: [...] }`"
    );
}

#[test]
fn a_file_outside_the_block_layout_is_refused() {
    let e = entries_of("{upstreams: {}, routes: []}\n").expect_err("refused");
    assert!(e.contains("plain block layout"), "{e}");
}

#[test]
fn current_is_a_generation_optionally_counted_and_marked_allow_empty() {
    let key = "/p/current";
    let plain = Current::parse(key, "41-0a1b2c3d\n").expect("a name alone, as before the mark");
    assert_eq!(plain.generation, "41-0a1b2c3d");
    assert_eq!(plain.empty, EmptyTable::Refused);
    assert_eq!(plain.keys, None);
    assert_eq!(plain.value(), "41-0a1b2c3d");
    let marked = Current::parse(key, "41-0a1b2c3d allow-empty").expect("marked");
    assert_eq!(marked.empty, EmptyTable::Allowed);
    assert_eq!(marked.value(), "41-0a1b2c3d allow-empty");
    assert_eq!(Current::parse(key, &marked.value()), Ok(marked));
    let counted = Current::parse(key, "41-0a1b2c3d allow-empty keys=2").expect("counted");
    assert_eq!(counted.keys, Some(2));
    assert_eq!(counted.value(), "41-0a1b2c3d keys=2 allow-empty");
    assert_eq!(Current::parse(key, &counted.value()), Ok(counted));
    assert_eq!(generation_of("  41-0a1b2c3d allow-empty"), "41-0a1b2c3d");
    let expected = "expected `keys=N` (a number of keys) and `allow-empty`, each at most once";
    for (value, error) in [
        (
            " \n",
            "etcd:/p/current:1:1: found an empty value, expected the name of a generation under tables/".to_string(),
        ),
        (
            "41-0a1b2c3d  allow_empty",
            format!("etcd:/p/current:1:14: found \"allow_empty\" after the generation's name, {expected}"),
        ),
        (
            "41-0a1b2c3d allow-empty allow-empty",
            format!("etcd:/p/current:1:25: found \"allow-empty\" after the generation's name, {expected}"),
        ),
        (
            "41-0a1b2c3d keys=x",
            format!("etcd:/p/current:1:13: found \"keys=x\" after the generation's name, {expected}"),
        ),
        (
            "41-0a1b2c3d keys=1 keys=1",
            format!("etcd:/p/current:1:20: found \"keys=1\" after the generation's name, {expected}"),
        ),
    ] {
        let e = Current::parse(key, value).expect_err(value);
        assert_eq!(e.to_string(), error, "{value:?}");
    }
}

#[test]
fn a_generation_must_hold_the_keys_current_counts() {
    let dir = generation_dir("/p/", "g");
    let kvs = vec![
        (
            format!("{dir}upstreams/000001-u"),
            "u: { targets: [\"127.0.0.1:1\"] }\n".to_string(),
        ),
        (format!("{dir}routes/000001-a"), "- name: a\n".to_string()),
    ];
    let a = assemble(&dir, kvs).expect("assembled");
    let current = |keys| Current {
        generation: "g".into(),
        keys,
        empty: EmptyTable::Refused,
    };
    assert_eq!(a.admit("/p/current", &current(Some(2)), Some(1)), Ok(()));
    assert_eq!(a.admit("/p/current", &current(None), Some(1)), Ok(()));
    for n in [1, 3] {
        assert_eq!(
            a.admit("/p/current", &current(Some(n)), Some(1)).map_err(|e| e.to_string()),
            Err(format!("etcd:/p/current:1:1: found 2 keys under /p/tables/g/, expected {n} (`keys={n}` in `current`, as written by `dyegate push`): a key was deleted or added behind dyegate's back; edit a key's value, or push the table again"))
        );
    }
}

/// `admit` for a table of `upstreams` and `routes` keys, `current` marked or not, over a running
/// table of `running` routes.
fn admit(upstreams: usize, routes: usize, empty: EmptyTable, running: Option<usize>) -> String {
    let dir = generation_dir("/p/", "g");
    let mut kvs: Vec<(String, String)> = (0..upstreams)
        .map(|i| {
            (
                format!("{dir}upstreams/{i:06}-u{i}"),
                format!("u{i}: {{ targets: [\"127.0.0.1:1\"] }}\n"),
            )
        })
        .collect();
    kvs.extend((0..routes).map(|i| {
        (
            format!("{dir}routes/{i:06}-r{i}"),
            format!("- name: r{i}\n  split: [{{ upstream: u0, weight: 1 }}]\n"),
        )
    }));
    let a = assemble(&dir, kvs).expect("assembled");
    let current = Current {
        generation: "g".into(),
        keys: None,
        empty,
    };
    match a.admit("/p/current", &current, running) {
        Ok(()) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_table_with_no_routes_needs_the_mark() {
    use EmptyTable::{Allowed, Refused};
    let missing = "etcd:/p/current:1:1: found generation \"g\", which has no keys under /p/tables/g/, expected a generation holding a table (a table with no routes is served only when pushed on purpose with `dyegate push --allow-empty`)";
    let no_routes = |running: &str| {
        format!("etcd:/p/current:1:1: found generation \"g\" with upstreams and no routes, expected at least one route {running} (a table with no routes is served only when pushed on purpose with `dyegate push --allow-empty`)")
    };
    // (upstream keys, route keys, mark, running routes) -> verdict
    let cases = [
        ((1, 1, Refused, Some(3)), "ok".to_string()),
        ((1, 1, Refused, None), "ok".to_string()),
        ((0, 0, Refused, Some(3)), missing.to_string()),
        ((0, 0, Refused, Some(0)), missing.to_string()),
        ((0, 0, Refused, None), missing.to_string()),
        (
            (1, 0, Refused, Some(3)),
            no_routes("while the running table has 3"),
        ),
        ((1, 0, Refused, None), no_routes("to start with")),
        ((1, 0, Refused, Some(0)), "ok".to_string()),
        ((0, 0, Allowed, Some(3)), "ok".to_string()),
        ((0, 0, Allowed, None), "ok".to_string()),
        ((1, 0, Allowed, Some(3)), "ok".to_string()),
    ];
    for ((u, r, mark, running), verdict) in cases {
        assert_eq!(
            admit(u, r, mark, running),
            verdict,
            "{u} {r} {mark:?} {running:?}"
        );
    }
}
