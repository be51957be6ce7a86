//! Incremental reloads (`incremental.rs`): decoding a version after another gives exactly what
//! decoding it alone gives, and unchanged entries are carried over as they are.

use super::routes_from_text;

/// Versions of one file, each a plausible edit of the first: weights, an added, removed and moved
/// route, comments, an anchor used by another route, a block scalar, quoted keys, CRLF.
fn versions() -> Vec<String> {
    let route = |name: &str, w: u32| {
        format!("  - name: {name}\n    dye: {{ tags: {{ canary: b }} }}\n    split: [{{ upstream: a, weight: 95 }}, {{ upstream: b, weight: {w} }}]\n")
    };
    let ups = "upstreams:\n  a: { targets: [\"127.0.0.1:1\"] }\n  \"b\":\n    targets:\n      - addr: 127.0.0.1:2\n        weight: 3\n";
    let base = format!(
        "{ups}routes:\n{}{}{}",
        route("r1", 5),
        route("r2", 5),
        route("r3", 5)
    );
    let mut v = vec![
        base.clone(),
        format!("{ups}routes:\n{}{}{}", route("r1", 5), route("r2", 50), route("r3", 5)),
        format!("{ups}routes:\n{}{}{}{}", route("r1", 5), route("new", 1), route("r2", 5), route("r3", 5)),
        format!("{ups}routes:\n{}{}", route("r1", 5), route("r3", 5)),
        format!("{ups}routes:\n{}{}{}", route("r3", 5), route("r1", 5), route("r2", 5)),
        format!("# a comment\n{ups}\nroutes:\n{}  # between\n{}{}", route("r1", 5), route("r2", 5), route("r3", 5)),
        format!("{ups}routes:\n  - name: r1\n    split: &s [{{ upstream: a, weight: 1 }}]\n  - name: r2\n    split: *s\n"),
        format!("{ups}routes:\n  - name: r1\n    split: &s [{{ upstream: b, weight: 1 }}]\n  - name: r2\n    split: *s\n"),
        format!("{ups}routes:\n  - name: r1\n    sticky: >-\n      header:x-user\n    split: [{{ upstream: a, weight: 1 }}]\n{}", route("r2", 5)),
        format!("{ups}routes:\n- name: r1\n  split: [{{ upstream: a, weight: 1 }}]\n- name: \"r2\"\n  split: [{{ upstream: b, weight: 1 }}]\n"),
        format!("{ups}routes:\n{}  - name: \"r2\n  - r4\"\n    split: [{{ upstream: a, weight: 1 }}]\n", route("r1", 5)),
        format!("routes:\n{}{}{}{ups}", route("r1", 5), route("r2", 5), route("r3", 5)),
        format!("---\nupstreams:\n  a: {{ targets: [\"127.0.0.1:1\"] }}\n  b: {{ targets: [\"127.0.0.1:2\"] }}\nroutes:\n{}", route("r1", 7)),
    ];
    v.push(base.replace('\n', "\r\n"));
    v
}

#[test]
fn an_edit_reuses_every_unchanged_entry() {
    let all = versions();
    let old = routes_from_text("routes.yaml", all[0].clone().into_bytes(), None).expect("valid");
    let new = super::routes_from_text(
        "routes.yaml",
        all[1].clone().into_bytes(),
        old.reuse.as_ref(),
    )
    .expect("valid");
    assert_eq!((new.timings.parsed, new.timings.reused), (1, 4));
    let whole = routes_from_text("routes.yaml", all[1].clone().into_bytes(), None).expect("valid");
    assert_eq!(new.model, whole.model);
    assert_eq!(whole.timings.parsed, 5);
    // And the version after that reuses the standalone-parsed entry too.
    let back = super::routes_from_text(
        "routes.yaml",
        all[0].clone().into_bytes(),
        new.reuse.as_ref(),
    )
    .expect("valid");
    assert_eq!((back.timings.parsed, back.timings.reused), (1, 4));
    assert_eq!(back.model, old.model);
}

#[test]
fn decoding_after_any_version_equals_decoding_the_whole_file() {
    let all = versions();
    let whole: Vec<_> = all
        .iter()
        .map(
            |t| match routes_from_text("routes.yaml", t.clone().into_bytes(), None) {
                Ok(l) => l,
                Err(e) => panic!("{t}\n{e}"),
            },
        )
        .collect();
    for (i, prev) in whole.iter().enumerate() {
        for (j, text) in all.iter().enumerate() {
            let after = super::routes_from_text(
                "routes.yaml",
                text.clone().into_bytes(),
                prev.reuse.as_ref(),
            )
            .unwrap_or_else(|e| panic!("{i} -> {j}: {e}"));
            assert_eq!(after.model, whole[j].model, "{i} -> {j}");
            // A chain of versions: the reuse of a reuse.
            for (k, third) in all.iter().enumerate() {
                let next = super::routes_from_text(
                    "routes.yaml",
                    third.clone().into_bytes(),
                    after.reuse.as_ref(),
                )
                .unwrap_or_else(|e| panic!("{i} -> {j} -> {k}: {e}"));
                assert_eq!(next.model, whole[k].model, "{i} -> {j} -> {k}");
            }
        }
    }
}

#[test]
fn an_invalid_edit_after_a_version_gets_the_located_errors() {
    let all = versions();
    let old = routes_from_text("routes.yaml", all[0].clone().into_bytes(), None).expect("valid");
    let bad = all[0].replacen("upstream: b, weight: 5", "upstream: nope, weight: 5", 1);
    let direct = routes_from_text("routes.yaml", bad.clone().into_bytes(), None)
        .map(|_| ())
        .expect_err("invalid");
    let after = super::routes_from_text("routes.yaml", bad.into_bytes(), old.reuse.as_ref())
        .map(|_| ())
        .expect_err("invalid");
    assert_eq!(after.to_string(), direct.to_string());
    assert!(
        after.to_string().starts_with(
            "routes.yaml:10:54: routes[0].split[1].upstream: found unknown upstream \"nope\""
        ),
        "{after}"
    );
}

#[test]
fn an_edit_carries_unchanged_routes_and_groups_over_as_they_are() {
    use std::sync::Arc;
    let all = versions();
    let after = |text: &str, prev: &super::LoadedRoutes| {
        super::routes_from_text("routes.yaml", text.as_bytes().to_vec(), prev.reuse.as_ref())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let old = routes_from_text("routes.yaml", all[0].clone().into_bytes(), None).expect("valid");
    let new = after(&all[1], &old);
    let same = |a: &super::LoadedRoutes, b: &super::LoadedRoutes, i: usize| {
        Arc::ptr_eq(&a.table.routes()[i], &b.table.routes()[i])
    };
    assert!(same(&old, &new, 0) && !same(&old, &new, 1) && same(&old, &new, 2));
    assert!(old
        .table
        .groups()
        .iter()
        .zip(new.table.groups())
        .all(|(a, b)| Arc::ptr_eq(a, b)));
    assert_eq!(new.table.routes()[1].split.weights, [95, 50]);

    // An upstream inserted first moves every group id: no route is carried over with stale ids.
    let shifted = all[0].replace(
        "upstreams:\n",
        "upstreams:\n  z: { targets: [\"127.0.0.1:9\"] }\n",
    );
    let moved = after(&shifted, &old);
    assert_eq!(moved.timings.parsed, 1);
    for (i, r) in moved.table.routes().iter().enumerate() {
        assert!(!Arc::ptr_eq(r, &old.table.routes()[i]), "route {i}");
        let names: Vec<&str> = r
            .split
            .groups
            .iter()
            .map(|g| moved.table.groups()[*g].name.as_ref())
            .collect();
        assert_eq!(names, ["a", "b"], "route {i}");
        assert_eq!(moved.table.groups()[r.dye.tags[0].1].name.as_ref(), "b");
    }
    // The groups themselves are carried over (their ids are their positions).
    assert!(Arc::ptr_eq(
        &moved.table.groups()[1],
        &old.table.groups()[0]
    ));
}

/// Random edits of the versions above (lines deleted, duplicated, swapped, re-indented, or plausible
/// and broken lines inserted: anchors, aliases, open quotes and brackets, comments, new entries):
/// decoding after a previous version must give exactly what decoding the file alone gives, the
/// same model or the same error messages.
mod incremental_equivalence {
    use super::super::routes_from_text;
    use proptest::prelude::*;

    const LINES: &[&str] = &[
        "  - name: extra",
        "    split: [{ upstream: a, weight: 1 }]",
        "    split: &s [{ upstream: b, weight: 2 }]",
        "    split: *s",
        "  c: { targets: [\"127.0.0.1:3\"] }",
        "  a: { targets: [\"127.0.0.1:4\"] }",
        "    sticky: \"header:x",
        "    sticky: header:x\"",
        "    split: [",
        "      { upstream: a, weight: 1 }]",
        "  # a comment",
        "# a comment",
        "routes:",
        "upstreams:",
        "- name: flat",
        "  split: [{ upstream: a, weight: 1 }]",
        "    dye: { tags: { canary: b } }",
        "  - name: r1",
        "",
        "---",
        "    sticky: |",
        "      header:x-user",
    ];

    #[derive(Debug, Clone)]
    enum Edit {
        Delete(usize),
        Duplicate(usize),
        Swap(usize),
        Indent(usize, bool),
        Insert(usize, usize),
        /// The n-th `weight: N` gets another number.
        Weight(usize, u32),
        /// The n-th route item (`- name:` line) is duplicated under a new name, block and all.
        CopyRoute(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            1 => any::<usize>().prop_map(Edit::Delete),
            1 => any::<usize>().prop_map(Edit::Duplicate),
            1 => any::<usize>().prop_map(Edit::Swap),
            1 => (any::<usize>(), any::<bool>()).prop_map(|(i, more)| Edit::Indent(i, more)),
            1 => (any::<usize>(), 0..LINES.len()).prop_map(|(i, l)| Edit::Insert(i, l)),
            4 => (any::<usize>(), 0..200u32).prop_map(|(i, w)| Edit::Weight(i, w)),
            2 => any::<usize>().prop_map(Edit::CopyRoute),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for e in edits {
            let n = lines.len().max(1);
            match *e {
                Edit::Delete(i) if !lines.is_empty() => {
                    lines.remove(i % n);
                }
                Edit::Duplicate(i) if !lines.is_empty() => {
                    let l = lines[i % n].clone();
                    lines.insert(i % n, l);
                }
                Edit::Swap(i) if lines.len() > 1 => lines.swap(i % (n - 1), i % (n - 1) + 1),
                Edit::Indent(i, more) if !lines.is_empty() => {
                    let l = &mut lines[i % n];
                    if more {
                        l.insert_str(0, "  ");
                    } else if let Some(rest) = l.strip_prefix("  ") {
                        *l = rest.to_string();
                    }
                }
                Edit::Insert(i, l) => lines.insert(i % (lines.len() + 1), LINES[l].to_string()),
                Edit::Weight(i, w) => {
                    let at: Vec<usize> = (0..lines.len())
                        .filter(|k| lines[*k].contains("weight: "))
                        .collect();
                    if let Some(k) = at.get(i % at.len().max(1)) {
                        let l = &lines[*k];
                        let p = l.find("weight: ").map_or(0, |p| p + 8);
                        let end = l[p..]
                            .find(|c: char| !c.is_ascii_digit())
                            .map_or(l.len(), |e| p + e);
                        lines[*k] = format!("{}{w}{}", &l[..p], &l[end..]);
                    }
                }
                Edit::CopyRoute(i) => {
                    let items: Vec<usize> = (0..lines.len())
                        .filter(|k| lines[*k].trim_start().starts_with("- name:"))
                        .collect();
                    if let Some(&k) = items.get(i % items.len().max(1)) {
                        let indent = lines[k].len() - lines[k].trim_start().len();
                        let end = (k + 1..lines.len())
                            .find(|j| {
                                let l = &lines[*j];
                                let ind = l.len() - l.trim_start().len();
                                !l.trim().is_empty() && ind <= indent
                            })
                            .unwrap_or(lines.len());
                        let mut block: Vec<String> = lines[k..end].to_vec();
                        block[0] = block[0].replacen("- name: ", "- name: copy", 1);
                        lines.splice(end..end, block);
                    }
                }
                _ => {}
            }
        }
        lines.join("\n") + "\n"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn equals_decoding_the_file_alone(
            base in 0..14usize,
            first in proptest::collection::vec(edit(), 0..2),
            second in proptest::collection::vec(edit(), 1..4),
        ) {
            let all = super::versions();
            let prev_text = apply(&all[base], &first);
            // Only a valid version is ever the running one.
            let Ok(prev) = routes_from_text("routes.yaml", prev_text.clone().into_bytes(), None) else {
                return Ok(());
            };
            let text = apply(&prev_text, &second);
            let alone = routes_from_text("routes.yaml", text.clone().into_bytes(), None);
            let after = routes_from_text("routes.yaml", text.clone().into_bytes(), prev.reuse.as_ref());
            match (alone, after) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(&a.model, &b.model, "{}\n--- after ---\n{}", prev_text, text);
                    // And the version after that, from the incremental one.
                    let again = routes_from_text("routes.yaml", prev_text.clone().into_bytes(), b.reuse.as_ref());
                    prop_assert_eq!(&again.map(|l| l.model).ok(), &Some(prev.model.clone()));
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "alone ok: {}, after ok: {}\n{}\n--- after ---\n{}", a.is_ok(), b.is_ok(), prev_text, text),
            }
        }
    }
}

#[test]
fn a_route_edited_elsewhere_than_its_split_continues_its_cycle() {
    use std::sync::Arc;
    let all = versions();
    let old = routes_from_text("routes.yaml", all[0].clone().into_bytes(), None).expect("valid");
    for r in old.table.routes() {
        for _ in 0..7 {
            r.split.smooth.next();
        }
    }
    old.table.groups()[0]
        .fixed_members()
        .map(|m| m.next_target());
    // r2 gets a match (recompiled, same split); r1 and r3 are carried over.
    let edited = all[0].replacen(
        "  - name: r2\n",
        "  - name: r2\n    match: { path_prefix: /r2 }\n",
        1,
    );
    let new = super::routes_from_text("routes.yaml", edited.into_bytes(), old.reuse.as_ref())
        .expect("valid");
    assert_eq!(
        new.carried.routes,
        [Some(0), None, Some(2)],
        "{:?}",
        new.carried
    );
    assert_eq!(new.carried.groups, [Some(0), Some(1)]);
    assert_eq!(new.table.routes()[1].split.smooth.position(), 0);
    new.table.inherit_positions(&old.table, &new.carried);
    for (i, r) in new.table.routes().iter().enumerate() {
        assert_eq!(r.split.smooth.position(), 7, "route {i}");
    }
    assert!(!Arc::ptr_eq(&new.table.routes()[1], &old.table.routes()[1]));
}
