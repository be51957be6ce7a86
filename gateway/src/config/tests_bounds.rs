//! Size and nesting bounds of configuration text (`config::bounds`): what is rejected, where,
//! what is not, and that the work grows linearly with the input.

use super::bounds::{too_deep_at, MAX_DEPTH};
use super::{routes_from_text, routes_from_text_within};
use std::time::Duration;

fn errors(text: &str) -> Vec<String> {
    match routes_from_text("routes.yaml", text.as_bytes().to_vec(), None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn flow(depth: usize) -> String {
    format!("routes: {}{}\n", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn deep_flow_nesting_is_rejected_where_it_passes_the_limit() {
    // `routes:` is level 0, the 128th bracket is level 128, the 129th is one too many.
    assert_eq!(
        errors(&flow(100_000)),
        vec!["routes.yaml:1:137: nesting deeper than 128 levels"]
    );
    assert_eq!(
        errors(&format!(
            "upstreams: {{}}\nroutes:\n  - {}\n",
            "{a: ".repeat(200)
        )),
        vec!["routes.yaml:3:513: nesting deeper than 128 levels"]
    );
    assert_eq!(too_deep_at(flow(MAX_DEPTH).as_bytes()), None);
    assert_eq!(too_deep_at(flow(MAX_DEPTH + 1).as_bytes()), Some(8 + 128));
}

#[test]
fn deep_block_nesting_is_rejected() {
    let dashes = format!("routes:\n{}x\n", "- ".repeat(50_000));
    assert_eq!(
        errors(&dashes),
        vec!["routes.yaml:2:259: nesting deeper than 128 levels"]
    );
    let mut indented = String::from("routes:\n");
    for i in 1..200 {
        indented.push_str(&format!("{}a:\n", " ".repeat(i)));
    }
    assert_eq!(
        errors(&indented),
        vec!["routes.yaml:130:130: nesting deeper than 128 levels"]
    );
}

#[test]
fn text_is_not_counted_as_nesting() {
    let deep = "[".repeat(1000);
    for text in [
        format!("a: \"{deep}\"\n"),
        format!("a: '{deep}'\n"),
        format!("a: \"x\n  {deep}\"\n"),
        format!("a: 'it''s\n  {deep}'\n"),
        format!("a: x # {deep}\n"),
        format!("# {deep}\na: 1\n"),
        format!("a: |\n  {deep}\n  more\nb: 1\n"),
        format!("- key: >-\n    {deep}\n  other: 1\n"),
        format!("a: [\"{deep}\", '{deep}']\n"),
        format!("a: plain{deep}\n"),
    ] {
        assert_eq!(too_deep_at(text.as_bytes()), None, "{text:?}");
    }
}

#[test]
fn nesting_hidden_where_a_parser_would_see_it_is_counted() {
    let deep = "[".repeat(1000);
    for text in [
        // A quote inside a plain scalar opens nothing (its continuation line neither).
        format!("a: it's\nb: {deep}\n"),
        format!("a: x\n  'y\nb: {deep}\n'\n"),
        // A block scalar ends at the first line indented no more than its key.
        format!("- key: |\n    x\n  other: {deep}\n"),
        // A lone CR and U+2028 break lines for libyaml.
        format!("a: |\rb: {deep}\n"),
        format!("a: |\u{2028}b: {deep}\n"),
        // A document marker, a flow quote that is plain text, `:` in a plain flow scalar.
        format!("--- {deep}\n"),
        format!("a: [x'y, {deep}\n'\n"),
        format!("a: [a:'b, {deep}\n'\n"),
    ] {
        assert!(too_deep_at(text.as_bytes()).is_some(), "{text:?}");
    }
}

#[test]
fn files_past_max_file_bytes_are_rejected_before_parsing() {
    let text = flow(10).repeat(100);
    let e = routes_from_text_within("routes.yaml", text.into_bytes(), None, 1000)
        .err()
        .expect("too big");
    assert_eq!(
        e.to_string(),
        "routes.yaml:1:1: found a file of 2900 bytes, expected at most 1000 (reload.max_file_bytes)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, vec![b'#'; 5000]).expect("write");
    let e = super::load_routes(&path, 4096).err().expect("too big");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:1:1: found a file of 5000 bytes, expected at most 4096 (reload.max_file_bytes)",
            path.display()
        )
    );
}

/// The CPU time this thread has used: unlike the wall clock, it does not count the time the
/// thread waited for a core (the parse runs on this thread only).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given, nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The least of a few runs' CPU time of `routes_from_text` over a text. CPU time, not the
/// wall clock: on a loaded machine (a CI box, the whole suite beside) a parse waits for a
/// core, and a test measuring that failed once (9 runnable threads per core) although the
/// parse itself was linear. The minimum is the least disturbed by caches and interrupts.
fn parse_time(text: &str) -> Duration {
    (0..3)
        .map(|_| {
            let t = thread_cpu_time();
            let _ = routes_from_text("routes.yaml", text.as_bytes().to_vec(), None);
            thread_cpu_time().saturating_sub(t)
        })
        .min()
        .unwrap_or_default()
}

/// Documents of about `n` units of each shape that stress a parser: nested (deep flow, deep
/// block), wide (many routes, a long flow list), aliased (one anchor used everywhere) and long
/// strings.
fn shapes(n: usize) -> Vec<(&'static str, String)> {
    let route = |i: usize| format!("  - {{ name: r{i}, split: [{{ upstream: a, weight: 1 }}] }}\n");
    let ups = "upstreams:\n  a: { targets: [\"127.0.0.1:9001\"] }\n";
    vec![
        ("nested flow", flow(n)),
        ("nested block", format!("routes:\n{}x\n", "- ".repeat(n))),
        (
            "nested 100 deep, repeated",
            format!(
                "routes:\n{}",
                format!("  - {}{}\n", "[".repeat(100), "]".repeat(100)).repeat(n / 200)
            ),
        ),
        (
            "wide routes",
            format!(
                "{ups}routes:\n{}",
                (0..n / 50).map(route).collect::<String>()
            ),
        ),
        (
            "wide flow list",
            format!("{ups}routes: [{}]\n", vec!["x"; n / 2].join(", ")),
        ),
        (
            "aliased",
            format!(
                "{ups}x-split: &s [{{ upstream: a, weight: 1 }}]\nroutes:\n{}",
                (0..n / 30)
                    .map(|i| format!("  - {{ name: r{i}, split: *s }}\n"))
                    .collect::<String>()
            ),
        ),
        (
            "long string",
            format!("{ups}routes:\n  - name: \"{}\"\n", "n".repeat(n)),
        ),
    ]
}

/// Parse time grows linearly: over 8x the input, the time per byte of every shape stays within a
/// bound (generous: the box is loaded; a quadratic shape is 8x off at this ratio, and 64x off
/// at the 100,000-level size of the issue).
#[test]
fn parse_time_grows_linearly_with_input_size() {
    let (small, big) = (20_000, 160_000);
    let mut report = Vec::new();
    for ((name, a), (_, b)) in shapes(small).into_iter().zip(shapes(big)) {
        let (ta, tb) = (parse_time(&a), parse_time(&b));
        // Per byte, with a floor for tiny times (timer resolution, scheduling).
        let floor = Duration::from_millis(2);
        let per_a = ta.max(floor).as_secs_f64() / a.len() as f64;
        let per_b = tb.as_secs_f64() / b.len() as f64;
        report.push(format!(
            "{name}: {} B {ta:?}, {} B {tb:?}, ratio per byte {:.2}",
            a.len(),
            b.len(),
            per_b / per_a
        ));
        assert!(
            per_b / per_a < 4.0,
            "{name} is not linear:\n{}",
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn a_root_that_cannot_be_a_mapping_is_rejected_from_its_first_node() {
    use super::bounds::not_a_mapping_root;
    for text in [
        "routes: []\n",
        "upstreams:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes: []\n",
        "\u{feff}# comment\n\n%YAML 1.2\n---\nroutes: []\n",
        "--- # marker\nroutes:\n",
        "{routes: []}",
        "? routes\n: []\n",
        "&top routes: []\n",
        "!!map\nroutes: []\n",
        "'routes': []\n",
        "\"rou\\\"tes\" : []\n",
        "a:b: c\n",
        "a b c:\n",
    ] {
        assert_eq!(not_a_mapping_root(text.as_bytes()), None, "{text:?}");
    }
    let long_key = format!("{}: 1\n", "k".repeat(1025));
    let long_quoted = format!("\"{}\": 1\n", "k".repeat(1030));
    for (text, at, found) in [
        ("just text\n", 0, "\"just text\""),
        ("# c\n- a\n", 4, "a list"),
        ("  [a, b]\n", 2, "a list"),
        ("|\n  text\n", 0, "a block of text"),
        ("abc\ndef: 1\n", 0, "\"abc\""),
        ("abc # no key: here\n", 0, "\"abc # no key: here\""),
        ("\"abc\"\n", 0, "\"\\\"abc\\\"\""),
        ("'a\n b': 1\n", 0, "\"'a\""),
        (long_key.as_str(), 0, ""),
        (long_quoted.as_str(), 0, ""),
    ] {
        let got = not_a_mapping_root(text.as_bytes());
        let (got_at, got_found) = got.unwrap_or_else(|| panic!("{text:?} passed"));
        assert_eq!(got_at, at, "{text:?}");
        if !found.is_empty() {
            assert_eq!(got_found, found, "{text:?}");
        } else {
            assert!(got_found.ends_with("…\""), "{got_found}");
        }
    }
}

#[test]
fn fifty_megabytes_of_one_scalar_get_a_short_located_error() {
    let letters: String = (0..50_000_000u32)
        .map(|i| b"abcdefghij0123456789:-,"[(i as usize * 7919) % 23] as char)
        .collect();
    let got = errors(&letters);
    assert_eq!(got.len(), 1, "{}", got.len());
    assert!(
        got[0].starts_with("routes.yaml:1:1: found \"")
            && got[0].ends_with("…\", expected a mapping with `upstreams` and `routes`"),
        "{}",
        &got[0][..got[0].len().min(300)]
    );
    // A long value under a known key: the message quotes its start, not 1 MB.
    let long = format!("routes: {}\n", "x".repeat(1_000_000));
    let got = errors(&long);
    assert!(
        got.iter().all(|e| e.len() < 300),
        "{:?}",
        got.iter().map(String::len).collect::<Vec<_>>()
    );
}
