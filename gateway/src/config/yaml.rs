//! YAML text to a tree whose every node knows its line and column, and a serde `Deserializer`
//! over that tree. The only place that knows the YAML crate.
//!
//! serde_yaml cannot report the position of a node after deserialisation, nor go on after the
//! first error, so the file is parsed once into [`Node`]s (yaml-rust2's marked events) and typed
//! config structs are deserialised from those nodes. Every error then carries the position and
//! field path of the node it is about, and callers can decode list elements one by one to collect
//! every error of a file instead of only the first.

use super::error::Mark;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::collections::HashMap;
use std::fmt;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Alias expansion budget: stops "billion laughs" documents.
const MAX_NODES: usize = 5_000_000;
/// Nodes aliases may add: this floor, or this factor times the nodes written out in the text,
/// whichever is more. Stops a "billion laughs" document after ~100,000 cloned nodes (about
/// 10 MB) instead of MAX_NODES (~500 MB, kept by the allocator after the rejection), and
/// leaves room for real sharing (an anchor of defaults aliased by every route).
const ALIAS_NODES_FLOOR: usize = 100_000;
const ALIAS_NODES_PER_NODE: usize = 100;
/// Nesting limit: stops stack exhaustion on `[[[[[[...`.
const MAX_DEPTH: usize = 128;

/// A parsed YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub mark: Mark,
    pub message: String,
}

fn mark(m: &Marker) -> Mark {
    Mark {
        line: m.line(),
        col: m.col() + 1,
    }
}

/// Parses one YAML document. An empty document (or only comments) is `Ok(None)`.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
        aliased: 0,
    };
    builder.document()
}

struct Builder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    /// Of `nodes`, those added by aliases.
    aliased: usize,
}

impl Builder<'_> {
    fn next(&mut self) -> Result<(Event, Marker), SyntaxError> {
        self.parser.next_token().map_err(|e| SyntaxError {
            mark: mark(e.marker()),
            message: format!("invalid YAML: {}", e.info()),
        })
    }

    fn document(&mut self) -> Result<Option<Node>, SyntaxError> {
        let mut root = None;
        loop {
            let (ev, m) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart => {
                    if root.is_some() {
                        return Err(SyntaxError {
                            mark: mark(&m),
                            message: "found a second YAML document, expected exactly one".into(),
                        });
                    }
                    let (ev, m) = self.next()?;
                    root = Some(self.node(ev, m, 0)?);
                }
                other => {
                    return Err(SyntaxError {
                        mark: mark(&m),
                        message: format!("invalid YAML: unexpected {other:?}"),
                    })
                }
            }
        }
    }

    fn count(&mut self, m: &Marker, n: usize) -> Result<(), SyntaxError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                mark: mark(m),
                message: format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
            });
        }
        Ok(())
    }

    fn node(&mut self, ev: Event, m: Marker, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                mark: mark(&m),
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        self.count(&m, 1)?;
        let (node, anchor) = match ev {
            Event::Scalar(value, style, anchor, _tag) => (
                Node {
                    kind: NodeKind::Scalar {
                        value,
                        plain: style == TScalarStyle::Plain,
                    },
                    mark: mark(&m),
                },
                anchor,
            ),
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, im) = self.next()?;
                    if ev == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(ev, im, depth + 1)?);
                }
                (
                    Node {
                        kind: NodeKind::Seq(items),
                        mark: mark(&m),
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let (ev, km) = self.next()?;
                    if ev == Event::MappingEnd {
                        break;
                    }
                    let key = self.node(ev, km, depth + 1)?;
                    let (ev, vm) = self.next()?;
                    let value = self.node(ev, vm, depth + 1)?;
                    entries.push((key, value));
                }
                (
                    Node {
                        kind: NodeKind::Map(entries),
                        mark: mark(&m),
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id).cloned() else {
                    return Err(SyntaxError {
                        mark: mark(&m),
                        message: "alias refers to an unknown anchor".into(),
                    });
                };
                let size = target.size();
                self.aliased += size;
                let written = self.nodes - (self.aliased - size);
                if self.aliased > ALIAS_NODES_FLOOR.max(ALIAS_NODES_PER_NODE * written) {
                    return Err(SyntaxError {
                        mark: mark(&m),
                        message: format!(
                            "aliases expand to more than {}x the document's own nodes (alias bomb?)",
                            ALIAS_NODES_PER_NODE
                        ),
                    });
                }
                self.count(&m, size)?;
                return Ok(target);
            }
            other => {
                return Err(SyntaxError {
                    mark: mark(&m),
                    message: format!("invalid YAML: unexpected {other:?}"),
                })
            }
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

impl Node {
    fn size(&self) -> usize {
        match &self.kind {
            NodeKind::Scalar { .. } => 1,
            NodeKind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            NodeKind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }

    /// The node at a field path such as `routes[0].split[1].weight`, or the deepest existing
    /// ancestor when part of the path is missing.
    pub fn find(&self, path: &str) -> &Node {
        let mut node = self;
        for seg in segments(path) {
            let next = match (&node.kind, seg) {
                (NodeKind::Map(entries), Seg::Key(k)) => entries
                    .iter()
                    .find(|(key, _)| key.as_str() == Some(k))
                    .map(|(_, v)| v),
                (NodeKind::Seq(items), Seg::Index(i)) => items.get(i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// The key node of the last path segment when it names a map entry (for "unknown key" style
    /// messages that should point at the key rather than the value).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true } if is_null(value))
    }

    /// A short description for "found ..." messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Scalar { value, plain } => match resolve(value, *plain) {
                Scalar::Null => "null".into(),
                Scalar::Bool(b) => b.to_string(),
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Str(s) => format!("{s:?}"),
            },
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Map(_) => "a mapping".into(),
        }
    }
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

/// Appends a map key to a field path.
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a list index to a field path.
pub fn join_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

fn is_null(v: &str) -> bool {
    matches!(v, "" | "~" | "null" | "Null" | "NULL")
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve(v: &str, plain: bool) -> Scalar<'_> {
    if !plain {
        return Scalar::Str(v);
    }
    if is_null(v) {
        return Scalar::Null;
    }
    match v {
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        _ => {}
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = v.parse::<i64>() {
            return Scalar::Int(i);
        }
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Scalar::Int(i);
        }
    }
    if let Some(oct) = v.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Scalar::Int(i);
        }
    }
    let looks_float = v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_float {
        if let Ok(f) = v.parse::<f64>() {
            return Scalar::Float(f);
        }
    }
    match v {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Scalar::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Scalar::Float(f64::NAN),
        _ => Scalar::Str(v),
    }
}

/// A deserialisation error, located at the node it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub message: String,
    pub located: Option<(Mark, String)>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn unexpected(u: &de::Unexpected<'_>) -> String {
    match u {
        de::Unexpected::Signed(i) => i.to_string(),
        de::Unexpected::Unsigned(i) => i.to_string(),
        de::Unexpected::Float(f) => f.to_string(),
        de::Unexpected::Bool(b) => b.to_string(),
        de::Unexpected::Str(s) => format!("{s:?}"),
        de::Unexpected::Char(c) => format!("{:?}", c.to_string()),
        de::Unexpected::Unit => "null".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// "`a`" or "one of `a`, `b`", for "expected ..." messages.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => "no fields here".into(),
        [one] => format!("`{one}`"),
        _ => format!(
            "one of {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            located: None,
        }
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "found {}, expected {}",
            unexpected(&unexp),
            exp
        ))
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "found {}, expected {}",
            unexpected(&unexp),
            exp
        ))
    }
    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("found {len} elements, expected {exp}"))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format_args!(
            "found {variant:?}, expected {}",
            one_of(expected)
        ))
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format_args!(
            "found unknown field `{field}`, expected {}",
            one_of(expected)
        ))
    }
    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing required field `{field}`"))
    }
    fn duplicate_field(field: &'static str) -> Self {
        Self::custom(format_args!(
            "found field `{field}` twice, expected it once"
        ))
    }
}

/// Deserialises `T` from `node`, whose field path is `path`.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node, path: &str) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        path: path.to_string(),
    })
}

struct NodeDe<'de> {
    node: &'de Node,
    path: String,
}

impl NodeDe<'_> {
    fn locate(&self, mut e: DeError) -> DeError {
        if e.located.is_none() {
            e.located = Some((self.node.mark, self.path.clone()));
        }
        e
    }
}

macro_rules! via_any {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            self.deserialize_any(v)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Scalar { value, plain } => match resolve(value, *plain) {
                Scalar::Null => v.visit_unit(),
                Scalar::Bool(b) => v.visit_bool(b),
                Scalar::Int(i) => v.visit_i64(i),
                Scalar::Float(f) => v.visit_f64(f),
                Scalar::Str(s) => v.visit_borrowed_str(s),
            },
            NodeKind::Seq(items) => v.visit_seq(SeqDe {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            NodeKind::Map(entries) => v.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &self.path,
            }),
        };
        r.map_err(|e| self.locate(e))
    }

    /// Strings are taken from any scalar (`port: 8080` read as text is "8080"), except null.
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { value, plain } if !(*plain && is_null(value)) => v
                .visit_borrowed_str(value.as_str())
                .map_err(|e| self.locate(e)),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_none().map_err(|e| self.locate(e))
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { value, .. } => v
                .visit_enum(value.as_str().into_deserializer())
                .map_err(|e: DeError| self.locate(e)),
            _ => Err(self.locate(de::Error::invalid_type(
                de::Unexpected::Other(&self.node.describe()),
                &"a name",
            ))),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    via_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_seq deserialize_map
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _n: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _l: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _n: &'static str,
        _l: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _n: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(_) => self.deserialize_any(v),
            // `admin:` with nothing after it means "all defaults", like an empty mapping.
            _ if self.node.is_null() => v
                .visit_map(MapDe {
                    entries: [].iter(),
                    value: None,
                    path: &self.path,
                })
                .map_err(|e| self.locate(e)),
            // Not "expected struct TimeoutsConfig": name the fields the user can write.
            _ if !fields.is_empty() => Err(self.locate(de::Error::custom(format_args!(
                "found {}, expected a mapping with fields {}",
                self.node.describe(),
                fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))),
            _ => self.deserialize_any(v),
        }
    }
}

struct SeqDe<'de, 'p> {
    items: std::slice::Iter<'de, Node>,
    index: usize,
    path: &'p str,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'de, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = join_index(self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDe { node, path }).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'de, 'p> {
    entries: std::slice::Iter<'de, (Node, Node)>,
    value: Option<(&'de Node, String)>,
    path: &'p str,
}

impl<'de> de::MapAccess<'de> for MapDe<'de, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let name = key.as_str().map_or_else(|| key.describe(), str::to_string);
        let path = join_key(self.path, &name);
        self.value = Some((value, path.clone()));
        seed.deserialize(NodeDe { node: key, path }).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some((node, path)) => seed.deserialize(NodeDe { node, path }),
            None => Err(de::Error::custom("value requested before key")),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
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
        let n =
            parse_ok("split:\n  - { upstream: a, weight: -5 }\n  - { upstream: b, wieght: 1 }\n");
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
}
