//! How a routing table is laid out in etcd, and how it becomes routes.yaml text again.
//!
//! Under the fleet's prefix (`/dyegate/prod/` here):
//!
//! ```text
//! /dyegate/prod/current                                  -> G (the generation being served)
//! /dyegate/prod/tables/G/upstreams/000001-shop-stable    -> shop-stable: { targets: [...] }
//! /dyegate/prod/tables/G/routes/000001-shop              -> - name: shop
//!                                                             match: ...
//! ```
//!
//! One key per top-level entry of routes.yaml (the incremental reload's cut), its text as in the
//! file with the section's indentation removed, so each value is a small YAML document of its own.
//! Entries are assembled in key order (the number keeps the file's order; the name after it is
//! only there for people reading keys). A table is written as a new generation and made current
//! by one transaction that also removes the old one: the table changes at exactly one etcd
//! revision, whatever its size. etcd's default limits (128 operations and 1.5 MiB per request)
//! would not take a 10,000-route table in one transaction, so a large generation is written in
//! several batches first, invisible to the gateways until `current` points at it.

use crate::config::{ConfigError, ConfigErrors, Mark};

/// The key naming the generation in use, under the prefix.
pub const CURRENT: &str = "current";
/// Where generations live, under the prefix.
pub const TABLES: &str = "tables/";
const UPSTREAMS: &str = "upstreams/";
const ROUTES: &str = "routes/";
/// Indentation added to each value when assembled under its section.
const INDENT: usize = 2;

/// One top-level entry: its key relative to the generation's directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

/// The directory of generation `generation` under `prefix`.
pub fn generation_dir(prefix: &str, generation: &str) -> String {
    format!("{prefix}{TABLES}{generation}/")
}

/// Cuts routes.yaml text into its entries, in file order, keyed for etcd. Only the plain block
/// layout can be cut (the layout `dyegate check` and the incremental reload read fastest).
pub fn entries_of(text: &str) -> Result<Vec<Entry>, String> {
    let cut = crate::config::incremental::cut(text).ok_or(
        "the file is not in the plain block layout (`upstreams:` a block mapping, `routes:` a block \
         sequence, nothing else at the top level), which the one-key-per-entry layout in etcd needs",
    )?;
    let width = |n: usize| n.to_string().len().max(6);
    let mut out = Vec::with_capacity(cut.upstreams.len() + cut.routes.len());
    let w = width(cut.upstreams.len());
    for (i, r) in cut.upstreams.iter().enumerate() {
        let value = dedent(&text[r.clone()]);
        let name = value.split(':').next().unwrap_or("");
        out.push(Entry {
            key: format!("{UPSTREAMS}{:0w$}-{}", i + 1, key_part(name)),
            value,
        });
    }
    let w = width(cut.routes.len());
    for (i, r) in cut.routes.iter().enumerate() {
        let value = dedent(&text[r.clone()]);
        out.push(Entry {
            key: format!("{ROUTES}{:0w$}-{}", i + 1, key_part(route_name(&value))),
            value,
        });
    }
    Ok(out)
}

/// Removes the entry's own indentation (that of its first line) from every line.
fn dedent(entry: &str) -> String {
    let indent = entry.len() - entry.trim_start_matches(' ').len();
    let mut out = String::with_capacity(entry.len());
    for line in entry.split_inclusive('\n') {
        let spaces = line.len() - line.trim_start_matches(' ').len();
        out.push_str(&line[spaces.min(indent)..]);
    }
    out
}

/// The `name:` of a route entry (`- name: shop` or a later `  name: shop` line), for its key.
fn route_name(value: &str) -> &str {
    value
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("- ").or_else(|| l.strip_prefix("  "))?;
            l.strip_prefix("name:")
        })
        .map(str::trim)
        .next()
        .unwrap_or("")
}

/// A name as a readable part of a key: `[A-Za-z0-9._-]`, others as `_`, at most 64 characters.
fn key_part(name: &str) -> String {
    let name = name.trim().trim_matches(['"', '\'']);
    name.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// routes.yaml text assembled from a generation's keys, and where each key's lines went.
#[derive(Debug, Default)]
pub struct Assembled {
    pub text: String,
    /// (first line in `text`, full key), in order.
    spans: Vec<(usize, String)>,
    /// What errors are located in when no key holds them (the generation's directory).
    dir: String,
}

/// Assembles the entries of one generation (`(full key, value)`, any order) into routes.yaml
/// text. A key that is neither an upstream nor a route, or a value that is not one entry of its
/// section, is an error located at that key.
pub fn assemble(dir: &str, mut kvs: Vec<(String, String)>) -> Result<Assembled, ConfigErrors> {
    kvs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut errors = Vec::new();
    let (mut upstreams, mut routes) = (Vec::new(), Vec::new());
    for (key, value) in kvs {
        let rel = key.strip_prefix(dir).unwrap_or(&key);
        let first = value
            .lines()
            .map(str::trim_start)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        let (list, ok, expected) = if rel.starts_with(UPSTREAMS) {
            let ok = !first.is_empty() && !first.starts_with('-');
            (
                &mut upstreams,
                ok,
                "one upstream, `NAME: { targets: [...] }`",
            )
        } else if rel.starts_with(ROUTES) {
            let ok = first == "-" || first.starts_with("- ");
            (&mut routes, ok, "one route, `- name: ...`")
        } else {
            errors.push(at_key(
                &key,
                "found a key that is neither upstreams/... nor routes/..., expected only those under a table"
                    .into(),
            ));
            continue;
        };
        if !ok {
            let found = if first.is_empty() {
                "an empty value".to_string()
            } else {
                format!("{:?}", first.chars().take(40).collect::<String>())
            };
            errors.push(at_key(&key, format!("found {found}, expected {expected}")));
            continue;
        }
        list.push((key, value));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let mut out = Assembled {
        dir: dir.to_string(),
        ..Assembled::default()
    };
    let mut line = 1;
    for (section, list) in [("upstreams:\n", upstreams), ("routes:\n", routes)] {
        out.text.push_str(section);
        line += 1;
        for (key, value) in list {
            out.spans.push((line, key));
            for l in value.split_inclusive('\n') {
                if !l.trim().is_empty() {
                    out.text.push_str(&" ".repeat(INDENT));
                }
                out.text.push_str(l);
                line += 1;
            }
            if !value.ends_with('\n') {
                out.text.push('\n');
                line += usize::from(value.is_empty());
            }
        }
    }
    Ok(out)
}

fn at_key(key: &str, message: String) -> ConfigError {
    ConfigError {
        file: format!("etcd:{key}"),
        mark: Mark { line: 1, col: 1 },
        path: String::new(),
        message,
    }
}

impl Assembled {
    /// Relocates an error found in the assembled text to the key its line came from
    /// (`etcd:/dyegate/prod/tables/G/routes/000004-shop:4:17`).
    pub fn locate(&self, mut e: ConfigError) -> ConfigError {
        let i = self
            .spans
            .partition_point(|(first, _)| *first <= e.mark.line);
        match i.checked_sub(1).map(|i| &self.spans[i]) {
            Some((first, key)) => {
                e.file = format!("etcd:{key}");
                e.mark = Mark {
                    line: e.mark.line - first + 1,
                    col: e.mark.col.saturating_sub(INDENT).max(1),
                };
            }
            None => e.file = format!("etcd:{}", self.dir),
        }
        e
    }

    pub fn locate_all(&self, errors: ConfigErrors) -> ConfigErrors {
        ConfigErrors(errors.0.into_iter().map(|e| self.locate(e)).collect())
    }
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
