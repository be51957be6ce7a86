//! How a routing table is laid out in etcd, and how it becomes routes.yaml text again.
//!
//! Under the fleet's prefix (`/dyegate/prod/` here):
//!
//! ```text
//! /dyegate/prod/current                                  -> G (the generation being served)
//!                                                           `G keys=3`, `G keys=2 allow-empty`
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
//!
//! etcd has no directories: a generation that does not exist and one with no keys look the same,
//! and one write to `current` (a typo, a stale name) would hand every gateway an empty table.
//! So a table with no routes is served only when `current`'s value carries the mark
//! `allow-empty` after the generation's name, which only `dyegate push --allow-empty` of a table
//! with no routes writes ([`Current`], [`Assembled::admit`]). A value without the mark is the
//! generation's name alone, as written before the mark existed.
//!
//! `current` also counts the generation's keys (`keys=N`): the version of a table is the highest
//! mod revision among `current` and its keys, which every gateway computes the same way from what
//! etcd holds at a revision, watching or listing; a key deleted behind dyegate's back leaves no
//! revision behind, so a generation that does not hold the count is refused rather than
//! numbered (see `Assembled::counted`).

use crate::config::{ConfigError, ConfigErrors, Mark};

/// The key naming the generation in use, under the prefix.
pub const CURRENT: &str = "current";
/// Where generations live, under the prefix.
pub const TABLES: &str = "tables/";
const UPSTREAMS: &str = "upstreams/";
const ROUTES: &str = "routes/";
/// Indentation added to each value when assembled under its section.
const INDENT: usize = 2;
/// The word after the generation's name in `current` that lets a table have no routes.
pub const ALLOW_EMPTY: &str = "allow-empty";
/// How a refused empty table is pushed on purpose, in messages.
const HOW_TO_EMPTY: &str =
    "a table with no routes is served only when pushed on purpose with `dyegate push --allow-empty`";

/// Whether a generation may hold a table with no routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyTable {
    /// The table must have routes (or the gateway serve none already): the default.
    #[default]
    Refused,
    /// Pushed with `--allow-empty`: no routes is what was meant.
    Allowed,
}

/// What `current` says: the generation served, how many keys it holds, and whether it may be
/// empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub generation: String,
    /// The number of keys `push` wrote under the generation (`keys=N`); absent in values
    /// written before the count existed. A deleted key leaves no revision behind in what a list
    /// sees, so a count that does not match is how every gateway, watching or listing, tells
    /// that a key was deleted (or added) behind dyegate's back: see [`Assembled::admit`].
    pub keys: Option<usize>,
    pub empty: EmptyTable,
}

/// The word that carries the key count in `current`'s value.
const KEYS: &str = "keys=";

impl Current {
    /// Parses `current`'s value, `GEN`, then `keys=N` and `allow-empty` (each at most once, in
    /// any order; surrounding whitespace ignored); anything else is an error located at `key`
    /// (the full key of `current`).
    pub fn parse(key: &str, value: &str) -> Result<Current, ConfigError> {
        let mut words = words_at(value);
        let Some((_, generation)) = words.next() else {
            return Err(at(
                key,
                1,
                "found an empty value, expected the name of a generation under tables/".into(),
            ));
        };
        let mut current = Current {
            generation: generation.to_string(),
            keys: None,
            empty: EmptyTable::Refused,
        };
        for (col, word) in words {
            let count = word.strip_prefix(KEYS).map(str::parse::<usize>);
            match count {
                Some(Ok(n)) if current.keys.is_none() => current.keys = Some(n),
                None if word == ALLOW_EMPTY && current.empty == EmptyTable::Refused => {
                    current.empty = EmptyTable::Allowed
                }
                _ => {
                    let found: String = word.chars().take(40).collect();
                    return Err(at(
                        key,
                        col,
                        format!(
                            "found {found:?} after the generation's name, expected `{KEYS}N` (a number of keys) and `{ALLOW_EMPTY}`, each at most once"
                        ),
                    ));
                }
            }
        }
        Ok(current)
    }

    /// The value written to `current`.
    pub fn value(&self) -> String {
        let mut value = self.generation.clone();
        if let Some(n) = self.keys {
            value.push_str(&format!(" {KEYS}{n}"));
        }
        if self.empty == EmptyTable::Allowed {
            value.push_str(&format!(" {ALLOW_EMPTY}"));
        }
        value
    }
}

/// The generation `current`'s value names (its first word), to know which keys to read or
/// follow; whether the value is valid is [`Current::parse`]'s to say, when the table is
/// assembled.
pub fn generation_of(value: &str) -> &str {
    value.split_whitespace().next().unwrap_or("")
}

/// The whitespace-separated words of `value` with their 1-based columns (in characters).
fn words_at(value: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = value;
    let mut col = 1;
    std::iter::from_fn(move || {
        let skipped = rest.len() - rest.trim_start().len();
        col += rest[..skipped].chars().count();
        rest = &rest[skipped..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        let (word, after) = rest.split_at(end);
        let at = col;
        col += word.chars().count();
        rest = after;
        Some((at, word))
    })
}

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
/// layout can be cut (the layout `dyegate check` and the incremental reload read fastest); an
/// empty section may be `routes: []` / `upstreams: {}`.
pub fn entries_of(text: &str) -> Result<Vec<Entry>, String> {
    let cut = crate::config::incremental::cut_allowing_empty(text).ok_or(
        "the file is not in the plain block layout (`upstreams:` a block mapping, `routes:` a block \
         sequence or `[]`, nothing else at the top level), which the one-key-per-entry layout in \
         etcd needs",
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
    /// Keys of the generation, and how many of them are routes.
    pub keys: usize,
    pub routes: usize,
}

/// Assembles the entries of one generation (`(full key, value)`, any order) into routes.yaml
/// text. A key that is neither an upstream nor a route, or a value that is not one entry of its
/// section (an entry of another section, or two entries: what one key holds is what `push` cut
/// as one), is an error located at that key.
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
        if let Some((line, second)) = second_entry(&value) {
            let found = format!("{:?}", second.chars().take(40).collect::<String>());
            errors.push(ConfigError {
                mark: Mark { line, col: 1 },
                ..at_key(
                    &key,
                    format!("found a second entry {found}, expected {expected}"),
                )
            });
            continue;
        }
        list.push((key, value));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let mut out = Assembled {
        dir: dir.to_string(),
        keys: upstreams.len() + routes.len(),
        routes: routes.len(),
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

/// The line (1-based) and text of a second entry in a value: a line after the first entry's
/// first, neither blank nor a comment, indented no more than it, where `push` would have cut
/// (the incremental reload's cut); a `---` is one too.
fn second_entry(value: &str) -> Option<(usize, &str)> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut lines = value.lines().enumerate().filter(|(_, l)| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#')
    });
    let (_, first) = lines.next()?;
    let first = indent(first);
    lines
        .find(|(_, l)| indent(l) <= first)
        .map(|(i, l)| (i + 1, l.trim()))
}

fn at_key(key: &str, message: String) -> ConfigError {
    at(key, 1, message)
}

fn at(key: &str, col: usize, message: String) -> ConfigError {
    ConfigError {
        file: format!("etcd:{key}"),
        mark: Mark { line: 1, col },
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

    /// Whether this table, the one `current` (full key `current_key`) names, may replace the
    /// running one, which has `running_routes` routes (`None`: nothing runs yet, at startup).
    /// Without the `allow-empty` mark, a generation with no keys (it does not exist, or was
    /// emptied) is refused, and so is one with no routes unless the gateway serves none
    /// already: one stray write must not take every route of the fleet away. The error is
    /// located at `current`.
    pub fn admit(
        &self,
        current_key: &str,
        current: &Current,
        running_routes: Option<usize>,
    ) -> Result<(), ConfigError> {
        if current.empty == EmptyTable::Allowed || self.routes > 0 {
            return self.counted(current_key, current);
        }
        let generation = &current.generation;
        if self.keys == 0 {
            return Err(at_key(
                current_key,
                format!(
                    "found generation {generation:?}, which has no keys under {}, expected a generation holding a table ({HOW_TO_EMPTY})",
                    self.dir
                ),
            ));
        }
        match running_routes {
            Some(0) => self.counted(current_key, current),
            running => Err(at_key(
                current_key,
                format!(
                    "found generation {generation:?} with upstreams and no routes, expected at least one route {} ({HOW_TO_EMPTY})",
                    match running {
                        Some(n) => format!("while the running table has {n}"),
                        None => "to start with".into(),
                    }
                ),
            )),
        }
    }

    /// Whether the generation holds the number of keys `current` says (when it says one). Every
    /// gateway numbers a table with the highest mod revision among `current` and its keys; a
    /// key deleted behind dyegate's back leaves no revision behind, so that number could go
    /// down, or name two tables. Such a table is refused instead, the same way by a gateway
    /// that watched the deletion and one that lists afterwards.
    fn counted(&self, current_key: &str, current: &Current) -> Result<(), ConfigError> {
        match current.keys {
            Some(n) if n != self.keys => Err(at_key(
                current_key,
                format!(
                    "found {} keys under {}, expected {n} (`{KEYS}{n}` in `current`, as written by `dyegate push`): a key was deleted or added behind dyegate's back; edit a key's value, or push the table again",
                    self.keys, self.dir
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
