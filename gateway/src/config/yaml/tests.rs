//! Unit tests of the located YAML tree and its deserializer.

use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // only decoded, to provoke errors
struct Entry {
    upstream: String,
    weight: u32,
}

fn parse_ok(text: &str) -> Node {
    parse(text).expect("valid yaml").expect("a document")
}

#[test]
fn marks_are_one_based() {
    let n = parse_ok("a:\n  b: [1, 2]\n");
    let b1 = n.find("a.b[1]");
    assert_eq!(b1.mark, Mark { line: 2, col: 10 });
    assert_eq!(n.find("a.b").mark, Mark { line: 2, col: 6 });
}

#[test]
fn errors_name_node_and_path() {
    let n = parse_ok("split:\n  - { upstream: a, weight: -5 }\n  - { upstream: b, wieght: 1 }\n");
    let s = n.find("split[0]");
    let e = from_node::<Entry>(s, "split[0]").expect_err("negative");
    assert_eq!(e.message, "found -5, expected u32");
    assert_eq!(
        e.located,
        Some((Mark { line: 2, col: 28 }, "split[0].weight".into()))
    );
    let e = from_node::<Entry>(n.find("split[1]"), "split[1]").expect_err("typo");
    assert_eq!(
        e.message,
        "found unknown field `wieght`, expected one of `upstream`, `weight`"
    );
    assert_eq!(
        e.located,
        Some((Mark { line: 3, col: 20 }, "split[1].wieght".into()))
    );
}

#[test]
fn empty_and_comment_only_documents() {
    assert_eq!(parse(""), Ok(None));
    assert_eq!(parse("# nothing\n"), Ok(None));
}

#[test]
fn syntax_errors_and_garbage_do_not_panic() {
    for text in [
        "a: [1, 2",
        "a: {b: 1",
        "\t- x",
        "a: b: c",
        "- a\nb: c",
        "\u{0}\u{1}\u{2}\u{fffd}",
        "*unknown",
        "--- a\n--- b\n",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ] {
        let _ = parse(text);
    }
    assert!(parse("a: [1, 2").is_err());
    assert!(parse("--- a\n--- b\n").is_err());
}

#[test]
fn alias_bomb_is_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let e = parse(&text).expect_err("bomb");
    assert!(e.message.contains("alias bomb"), "{}", e.message);
}
