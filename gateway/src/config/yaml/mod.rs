//! YAML text to a tree whose every node knows its line and column, and a serde `Deserializer`
//! over that tree. The only place that knows the YAML crate.
//!
//! serde_yaml cannot report the position of a node after deserialisation, nor go on after the
//! first error, so the file is parsed once into [`Node`]s (yaml-rust2's marked events) and typed
//! config structs are deserialised from those nodes. Every error then carries the position and
//! field path of the node it is about, and callers can decode list elements one by one to collect
//! every error of a file instead of only the first.

use super::error::Mark;
use std::collections::HashMap;
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
/// Nesting limit: stops stack exhaustion on `[[[[[[...` (the text was checked before, in linear
/// time, by `config::bounds`; this catches what that scan counts differently).
use super::bounds::MAX_DEPTH;

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
                message: super::bounds::too_deep(),
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
                Scalar::Str(s) => quote(s),
            },
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Map(_) => "a mapping".into(),
        }
    }
}

/// A string as "found ..." messages quote it: its first
/// [`QUOTED_CHARS`](crate::config::bounds::QUOTED_CHARS) characters, then `…` (a 50 MB value
/// makes a one-line message, not a 50 MB one).
pub fn quote(s: &str) -> String {
    let limit = crate::config::bounds::QUOTED_CHARS;
    match s.char_indices().nth(limit) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}", format!("{}…", &s[..cut])),
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

mod de;
mod scalar;
#[cfg(test)]
mod tests;

pub use de::{from_node, one_of, DeError};
use scalar::{is_null, resolve, Scalar};
