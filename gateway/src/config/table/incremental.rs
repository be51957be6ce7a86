//! Incremental decoding of routes.yaml. A reload usually changes a few lines of a file that may
//! hold thousands of routes, so the file is cut into its top-level entries (each `upstreams.NAME`
//! and each `routes[i]`), and an entry whose text is unchanged since the running version is taken
//! from that version's decoded model instead of being parsed again. Only changed entries go
//! through the YAML parser, each on its own.
//!
//! Correctness does not rest on the cutting being clever: the cutter accepts only the plain block
//! layout (`upstreams:` a block mapping, `routes:` a block sequence, nothing else at the top) and
//! gives up on anything else; an entry parsed on its own must decode to exactly one entry, or the
//! whole file is parsed as before. An entry is remembered from a whole-file parse only when its
//! text cannot depend on the rest of the file (no alias `*`) and cannot be the opening part of a
//! construct the cutter split wrongly (every line closes its quotes and brackets). Entries parsed
//! on their own are self-contained by construction.

use super::model::{RouteConfig, RoutesConfig, UpstreamConfig};
use crate::config::entries::Entries;
use crate::routing::{Carried, RouteTable};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// The top-level entries of a routes file, as byte ranges of its text, in file order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cut {
    pub upstreams: Vec<Range<usize>>,
    pub routes: Vec<Range<usize>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Upstreams,
    Routes,
}

/// Cuts a routes file into its entries. `None` when the layout is not the plain block layout,
/// or the file has no routes.
pub fn cut(text: &str) -> Option<Cut> {
    cut_sections(text, false).filter(|c| !c.routes.is_empty())
}

/// Like [`cut`], for a table that may have no routes (`dyegate push --allow-empty`): a section
/// may also be empty, written `routes:` with nothing under it, `routes: []` or `upstreams: {}`.
/// `routes:` must still be there.
pub fn cut_allowing_empty(text: &str) -> Option<Cut> {
    cut_sections(text, true)
}

/// The cut, where `empty_flow` also takes `KEY: []` and `KEY: {}` as an empty section.
///
/// One pass over the lines, with the open section and its item indent as the only state; kept
/// as one function (about 95 lines) because its cases read in order, top to bottom, as the
/// layout rules they check.
fn cut_sections(text: &str, empty_flow: bool) -> Option<Cut> {
    let mut out = Cut::default();
    let mut seen = [false; 2];
    // (section, item indent once known)
    let mut current: Option<(Section, Option<usize>)> = None;
    let mut first_content = true;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start_matches(' ').len();
        let rest = &body[indent..];
        if rest.starts_with('\t') {
            return None;
        }
        if rest.is_empty() || rest.starts_with('#') {
            continue; // blank or comment: stays with the entry before it
        }
        let starts_item = |s: &str| s == "-" || s.starts_with("- ");
        if let Some((section, item_indent)) = current {
            let list = match section {
                Section::Upstreams => &mut out.upstreams,
                Section::Routes => &mut out.routes,
            };
            match item_indent {
                None if indent == 0 && !(section == Section::Routes && starts_item(rest)) => {
                    // An empty section; the line is the next top-level key.
                }
                None => {
                    let ok = match section {
                        Section::Routes => starts_item(rest),
                        Section::Upstreams => !rest.starts_with(['-', '?']),
                    };
                    if !ok {
                        return None;
                    }
                    current = Some((section, Some(indent)));
                    close(list, start);
                    list.push(start..start);
                    continue;
                }
                Some(i) if indent > i => continue,
                Some(i) if indent == i => {
                    let ok = match section {
                        Section::Routes => starts_item(rest),
                        Section::Upstreams => !rest.starts_with(['-', '?']),
                    };
                    if ok {
                        close(list, start);
                        list.push(start..start);
                        continue;
                    }
                    if indent != 0 {
                        return None;
                    }
                }
                Some(_) if indent == 0 => {}
                Some(_) => return None,
            }
            close(list, start);
            current = None;
        }
        // A top-level line.
        if indent != 0 {
            return None;
        }
        if first_content && (rest == "---" || rest.starts_with("--- #")) {
            first_content = false;
            continue;
        }
        first_content = false;
        let (key, empty) = match top_key(rest) {
            Some(key) => (key, false),
            None if empty_flow => (empty_key(rest)?, true),
            None => return None,
        };
        let section = match key {
            "upstreams" => Section::Upstreams,
            "routes" => Section::Routes,
            _ => return None,
        };
        let slot = &mut seen[section as usize];
        if *slot {
            return None;
        }
        *slot = true;
        current = (!empty).then_some((section, None));
    }
    if let Some((section, _)) = current {
        let list = match section {
            Section::Upstreams => &mut out.upstreams,
            Section::Routes => &mut out.routes,
        };
        close(list, text.len());
    }
    seen[Section::Routes as usize].then_some(out)
}

/// Ends the open entry (if any) at `end`.
fn close(list: &mut [Range<usize>], end: usize) {
    if let Some(last) = list.last_mut() {
        if last.end == last.start {
            last.end = end;
        }
    }
}

/// `KEY:` with nothing after it but a comment; the key.
fn top_key(line: &str) -> Option<&str> {
    let (key, after) = line.split_once(':')?;
    let after = after.trim_start_matches(' ');
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    key.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        .then_some(key)
}

/// `KEY: []` or `KEY: {}` with nothing after it but a comment; the key.
fn empty_key(line: &str) -> Option<&str> {
    let (key, after) = line.split_once(':')?;
    let after = after.trim_start_matches(' ');
    let rest = after
        .strip_prefix("[]")
        .or_else(|| after.strip_prefix("{}"))?;
    let rest = rest.trim_start_matches(' ');
    (rest.is_empty() || rest.starts_with('#')).then_some(key)
}

/// Whether a whole-file parse of this entry's text can be remembered (see the module docs).
fn self_contained(chunk: &str) -> bool {
    !chunk.contains('*') && chunk.lines().all(line_closed)
}

/// A line whose quotes and brackets all close on it (outside a comment). Conservative: a plain
/// scalar with an apostrophe fails it, which only means that entry is parsed again next time.
fn line_closed(line: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                '#' if prev == ' ' => break,
                _ => {}
            },
        }
        prev = c;
    }
    quote.is_none() && depth == 0
}

/// The hash of an entry's text (fixed keys: hashes of one version are compared with the next's;
/// a match is then confirmed by comparing the texts).
fn hash_of(s: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x0064_7965_6761_7465).hash_one(s)
}

/// The entries' hashes, computed once per load.
#[derive(Clone)]
pub struct Keys {
    upstreams: Vec<u64>,
    routes: Vec<u64>,
}

impl Keys {
    pub fn of(text: &str, cut: &Cut) -> Keys {
        let hash =
            |ranges: &[Range<usize>]| ranges.iter().map(|r| hash_of(&text[r.clone()])).collect();
        Keys {
            upstreams: hash(&cut.upstreams),
            routes: hash(&cut.routes),
        }
    }
}

/// Maps keyed by a hash already: the key is its own hash.
#[derive(Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type ByHash = HashMap<u64, (Range<usize>, usize), BuildHasherDefault<Prehashed>>;

/// What a decoded version remembers so the next one can reuse its unchanged entries: the text,
/// the model, and for each remembered entry its text's hash → (range, index in the model).
pub struct Reuse {
    text: Arc<str>,
    model: Arc<RoutesConfig>,
    /// The table compiled from `model` (route i and group i come from its entry i).
    table: Arc<RouteTable>,
    cut: Cut,
    keys: Keys,
    all: bool,
    /// Built by [`Reuse::prepare`] (after the swap, off the reload's critical path) or by the
    /// first [`Reuse::decode`].
    index: Arc<OnceLock<Index>>,
}

/// Entry hash → (text range, index in the model), for the remembered entries.
struct Index {
    upstreams: ByHash,
    routes: ByHash,
}

impl std::fmt::Debug for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reuse")
            .field("upstreams", &self.cut.upstreams.len())
            .field("routes", &self.cut.routes.len())
            .finish()
    }
}

/// How a model was decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Entries taken from the previous version unchanged.
    pub reused: usize,
    /// Entries parsed on their own.
    pub parsed: usize,
    /// Where each entry came from: its index in the previous version, when its text is
    /// unchanged (its decoded value then is the same); `groups[i]` is upstream `i`.
    pub unchanged: Carried,
}

/// Entries reused and parsed so far in one decode, and how many may be parsed one by one before
/// a whole-file parse is cheaper.
struct Tally {
    reused: usize,
    parsed: usize,
    budget: usize,
}

impl Reuse {
    /// Remembers the entries of `model`, decoded from `text` cut as `entries`. `all` says every
    /// entry was parsed on its own (or reused), so all can be remembered; otherwise only the
    /// self-contained ones are.
    pub fn new(
        text: Arc<str>,
        model: Arc<RoutesConfig>,
        table: Arc<RouteTable>,
        cut: Cut,
        keys: Keys,
        all: bool,
    ) -> Option<Reuse> {
        if cut.upstreams.len() != model.upstreams.len()
            || cut.routes.len() != model.routes.len()
            || table.groups().len() != model.upstreams.len()
            || table.routes().len() != model.routes.len()
        {
            return None;
        }
        Some(Reuse {
            text,
            model,
            table,
            cut,
            keys,
            all,
            index: Arc::new(OnceLock::new()),
        })
    }

    /// The entries of a version decoded earlier (a kept one applied again), found from its
    /// text without parsing it: only the self-contained entries are remembered.
    pub fn of(text: Arc<str>, model: Arc<RoutesConfig>, table: Arc<RouteTable>) -> Option<Reuse> {
        let cut = cut(&text)?;
        let keys = Keys::of(&text, &cut);
        Reuse::new(text, model, table, cut, keys, false)
    }

    /// The same entries with the table compiled from them now (a rollout step: the same text
    /// and model, other weights set over them); the lookup of entries is shared.
    pub fn rebased(&self, table: Arc<RouteTable>) -> Reuse {
        Reuse {
            text: self.text.clone(),
            model: self.model.clone(),
            table,
            cut: self.cut.clone(),
            keys: self.keys.clone(),
            all: self.all,
            index: self.index.clone(),
        }
    }

    /// Builds the lookup of this version's entries now, so that the next reload does not.
    pub fn prepare(&self) {
        self.index();
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let remember = |ranges: &[Range<usize>], keys: &[u64]| {
                let mut map = ByHash::with_capacity_and_hasher(ranges.len(), Default::default());
                for (i, (r, key)) in ranges.iter().zip(keys).enumerate() {
                    if self.all || self_contained(&self.text[r.clone()]) {
                        map.entry(*key).or_insert((r.clone(), i));
                    }
                }
                map
            };
            Index {
                upstreams: remember(&self.cut.upstreams, &self.keys.upstreams),
                routes: remember(&self.cut.routes, &self.keys.routes),
            }
        })
    }

    fn find(&self, map: &ByHash, key: u64, chunk: &str) -> Option<usize> {
        let (range, i) = map.get(&key)?;
        (&self.text[range.clone()] == chunk).then_some(*i)
    }

    /// Decodes `text` (cut as `entries`) reusing this version's unchanged entries and parsing
    /// the others one by one. `None` when an entry does not decode on its own to exactly one
    /// entry, or when so many changed that a whole-file parse is cheaper: the caller parses the
    /// whole file then.
    pub fn decode(
        &self,
        text: &str,
        entries: &Cut,
        keys: &Keys,
    ) -> Option<(RoutesConfig, Decoded)> {
        let index = self.index();
        let total = entries.upstreams.len() + entries.routes.len();
        let mut tally = Tally {
            reused: 0,
            parsed: 0,
            budget: (total / 8).max(64),
        };
        let (upstreams, upstream_origins) = self.decode_list(
            text,
            entries.upstreams.iter().zip(&keys.upstreams),
            &index.upstreams,
            &self.model.upstreams,
            &mut tally,
            |chunk| {
                let one: Entries<UpstreamConfig> = serde_yaml::from_str(chunk).ok()?;
                let [(name, up)]: [(String, UpstreamConfig); 1] = one.0.try_into().ok()?;
                Some((name, Some(Arc::new(up))))
            },
        )?;
        let (routes, route_origins) = self.decode_list(
            text,
            entries.routes.iter().zip(&keys.routes),
            &index.routes,
            &self.model.routes,
            &mut tally,
            |chunk| {
                let one: Vec<RouteConfig> = serde_yaml::from_str(chunk).ok()?;
                let [route]: [RouteConfig; 1] = one.try_into().ok()?;
                Some(Some(Arc::new(route)))
            },
        )?;
        let stats = Decoded {
            reused: tally.reused,
            parsed: tally.parsed,
            unchanged: Carried {
                groups: upstream_origins,
                routes: route_origins,
            },
        };
        let model = RoutesConfig {
            upstreams,
            routes,
            failed: Vec::new(),
        };
        Some((model, stats))
    }

    /// One list of entries (upstreams or routes), each taken from this version's `previous`
    /// when its text is unchanged, parsed on its own by `parse` otherwise; with each entry's
    /// index in `previous`, if any.
    fn decode_list<'t, T: Clone>(
        &self,
        text: &str,
        entries: impl Iterator<Item = (&'t Range<usize>, &'t u64)>,
        map: &ByHash,
        previous: &[T],
        tally: &mut Tally,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<(Vec<T>, Vec<Option<usize>>)> {
        let (mut out, mut origins) = (Vec::new(), Vec::new());
        for (r, key) in entries {
            let chunk = &text[r.clone()];
            let origin = self.find(map, *key, chunk);
            origins.push(origin);
            match origin {
                Some(i) => {
                    out.push(previous.get(i)?.clone());
                    tally.reused += 1;
                }
                None => {
                    tally.parsed += 1;
                    if tally.parsed > tally.budget {
                        return None;
                    }
                    out.push(parse(chunk)?);
                }
            }
        }
        Some((out, origins))
    }

    /// The table compiled from this version.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces<'a>(text: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn cuts_the_block_layout_into_entries() {
        let text = "# head\nupstreams:\n  a: { targets: [\"127.0.0.1:1\"] }\n  # about b\n  b:\n    targets:\n      - 127.0.0.1:2\n\nroutes:\n  - name: r1\n    split: [{ upstream: a, weight: 1 }]\n  # between\n  - name: r2\n    split:\n      - upstream: b\n        weight: 1\n";
        let e = cut(text).expect("plain layout");
        assert_eq!(
            pieces(text, &e.upstreams),
            [
                "  a: { targets: [\"127.0.0.1:1\"] }\n  # about b\n",
                "  b:\n    targets:\n      - 127.0.0.1:2\n\n"
            ]
        );
        assert_eq!(
            pieces(text, &e.routes),
            [
                "  - name: r1\n    split: [{ upstream: a, weight: 1 }]\n  # between\n",
                "  - name: r2\n    split:\n      - upstream: b\n        weight: 1\n"
            ]
        );
    }

    #[test]
    fn cuts_indentless_sequences_and_any_section_order() {
        let text = "---\nroutes:\n- name: r1\n  split: [{ upstream: a, weight: 1 }]\n- name: r2\n  split: [{ upstream: a, weight: 1 }]\nupstreams:\n  a: { targets: [\"127.0.0.1:1\"] }";
        let e = cut(text).expect("plain layout");
        assert_eq!(e.routes.len(), 2);
        assert_eq!(
            pieces(text, &e.upstreams),
            ["  a: { targets: [\"127.0.0.1:1\"] }"]
        );
    }

    #[test]
    fn gives_up_on_anything_but_the_plain_layout() {
        for text in [
            "routes: [{ name: r }]\n",
            "upstreams: {}\nroutes:\n  - name: r\nextra:\n  - 1\n",
            "routes:\n  - name: r\nroutes:\n  - name: s\n",
            "%YAML 1.2\n---\nroutes:\n  - name: r\n",
            "routes:\n  - name: r\n---\nroutes:\n  - name: s\n",
            "routes:\n  - name: r\n split: []\n",
            "routes:\n    - name: r\n  - name: s\n",
            "routes:\n  name: r\n",
            "upstreams:\n  ? a\n  : {}\nroutes:\n  - name: r\n",
            "routes:\n",
            "routes:\n\t- name: r\n",
            "  routes:\n  - name: r\n",
        ] {
            assert_eq!(cut(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_table_without_routes_is_cut_only_when_allowed() {
        for (text, upstreams) in [
            (
                "routes:
", 0,
            ),
            (
                "routes: []
",
                0,
            ),
            (
                "upstreams: {}  # none
routes: []
",
                0,
            ),
            (
                "upstreams:
  a: { targets: [\"127.0.0.1:1\"] }
routes: []
",
                1,
            ),
            (
                "routes:
upstreams:
  a: { targets: [\"127.0.0.1:1\"] }
",
                1,
            ),
        ] {
            assert_eq!(cut(text), None, "{text:?}");
            let c = cut_allowing_empty(text).expect(text);
            assert_eq!(
                (c.upstreams.len(), c.routes.len()),
                (upstreams, 0),
                "{text:?}"
            );
        }
        for text in [
            "upstreams: {}
",
            "routes: [{ name: r }]
",
            "routes: [] x
",
        ] {
            assert_eq!(cut_allowing_empty(text), None, "{text:?}");
        }
        let text = "upstreams: {}
routes:
  - name: r
";
        assert_eq!(
            cut(text),
            None,
            "flow sections stay out of the incremental reload"
        );
        assert_eq!(cut_allowing_empty(text).map(|c| c.routes.len()), Some(1));
    }

    #[test]
    fn self_contained_entries() {
        assert!(self_contained(
            "  - name: r # it's\n    split: [{ upstream: a, weight: 1 }]\n"
        ));
        assert!(!self_contained("  - name: r\n    split: *same\n"));
        assert!(!self_contained("  - name: \"r\n"));
        assert!(!self_contained("  - name: r\n    split: [\n"));
        assert!(!self_contained("  - name: it's\n"));
    }
}
