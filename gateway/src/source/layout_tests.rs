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
fn a_file_outside_the_block_layout_is_refused() {
    let e = entries_of("{upstreams: {}, routes: []}\n").expect_err("refused");
    assert!(e.contains("plain block layout"), "{e}");
}
