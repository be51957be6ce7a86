//! File text to config model, with every error located as `FILE:LINE:COL: path: message`.

use super::bounds::mark_of_offset;
use super::error::{ConfigError, Issue, Mark};
use super::settings::model::GatewayConfig;
use super::table::by_field::{self, field_names};
use super::table::model::{RoutesConfig, RoutesFile};
use super::yaml::{self, join_index, join_key, DeError, Node, NodeKind};
use std::path::Path;
use std::sync::Arc;

/// A parsed file: its name (for messages), the YAML tree (for locating issues) and its text.
pub struct Source {
    pub file: String,
    pub text: String,
    pub root: Option<Node>,
}

/// The error of a file that cannot be read.
pub fn unreadable(file: &str, e: &std::io::Error) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        mark: Mark { line: 0, col: 0 },
        path: String::new(),
        message: format!("cannot read file: {e}"),
    }
}

impl Source {
    /// Reads and parses a file. Unreadable, non-UTF-8 and syntactically broken files are errors.
    pub fn read(path: &Path) -> Result<Source, Vec<ConfigError>> {
        let file = path.display().to_string();
        // Size and depth before the parser (routes text is checked by `routes_from_text`).
        let max = super::bounds::DEFAULT_MAX_FILE_BYTES;
        let bytes = super::bounds::read(path, max).map_err(|e| vec![e])?;
        super::bounds::check(&file, &bytes, max).map_err(|e| vec![e])?;
        Source::from_bytes(file, bytes)
    }

    pub fn from_bytes(file: String, bytes: Vec<u8>) -> Result<Source, Vec<ConfigError>> {
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => return Err(vec![not_utf8(file, e.as_bytes(), e.utf8_error())]),
        };
        Source::from_text(file, text)
    }

    pub fn from_text(file: String, text: String) -> Result<Source, Vec<ConfigError>> {
        if let Some(at) = first_control_char(&text) {
            return Err(vec![ConfigError {
                mark: mark_of_offset(text.as_bytes(), at),
                file,
                path: String::new(),
                message: "found a control character, expected a YAML text file".into(),
            }]);
        }
        match yaml::parse(&text) {
            Ok(root) => Ok(Source { file, text, root }),
            Err(e) => Err(vec![ConfigError {
                file,
                mark: e.mark,
                path: String::new(),
                message: e.message,
            }]),
        }
    }

    /// Locates an issue by its field path.
    pub fn locate(&self, issue: Issue) -> ConfigError {
        let mark = self
            .root
            .as_ref()
            .map_or(Mark { line: 1, col: 1 }, |r| r.find(&issue.path).mark);
        ConfigError {
            file: self.file.clone(),
            mark,
            path: issue.path,
            message: issue.message,
        }
    }

    fn de_error(&self, e: DeError, fallback: &Node, path: &str) -> ConfigError {
        let (mark, path) = e.located.unwrap_or((fallback.mark, path.to_string()));
        ConfigError {
            file: self.file.clone(),
            mark,
            path,
            message: e.message,
        }
    }

    /// Decodes gateway.yaml. An empty file is all defaults.
    pub fn gateway(&self) -> Result<GatewayConfig, Vec<ConfigError>> {
        match &self.root {
            None => Ok(GatewayConfig::default()),
            Some(root) => yaml::from_node(root, "").map_err(|e| vec![self.de_error(e, root, "")]),
        }
    }

    /// Decodes routes.yaml entry by entry, collecting every decoding error. Entries that fail
    /// to decode are kept as `None` so indices (and error paths) of the others stay right.
    pub fn routes(&self) -> (RoutesConfig, Vec<ConfigError>) {
        let mut out = RoutesConfig::default();
        let Some(root) = &self.root else {
            return (
                out,
                vec![ConfigError {
                    file: self.file.clone(),
                    mark: Mark { line: 1, col: 1 },
                    path: String::new(),
                    message:
                        "found an empty file, expected a mapping with `upstreams` and `routes`"
                            .into(),
                }],
            );
        };
        let NodeKind::Map(top) = &root.kind else {
            return (
                out,
                vec![self.locate_at(
                    root,
                    "",
                    format!(
                        "found {}, expected a mapping with `upstreams` and `routes`",
                        root.describe()
                    ),
                )],
            );
        };
        let mut errors = Vec::new();
        let mut seen = Vec::new();
        for (key, value) in top {
            let name = key.as_str().unwrap_or_default();
            if seen.contains(&name) {
                errors.push(self.locate_at(
                    key,
                    name,
                    format!("found `{name}` twice, expected it once"),
                ));
                continue;
            }
            seen.push(name);
            match name {
                "upstreams" => self.upstreams(value, &mut out, &mut errors),
                "routes" => self.route_list(value, &mut out, &mut errors),
                other => errors.push(self.unknown_field(key, other, field_names::<RoutesFile>())),
            }
        }
        if !seen.contains(&"routes") {
            errors.push(self.locate_at(root, "", "missing required field `routes`".into()));
        }
        (out, errors)
    }

    fn upstreams(&self, node: &Node, out: &mut RoutesConfig, errors: &mut Vec<ConfigError>) {
        match &node.kind {
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    let name = k.as_str().map_or_else(|| k.describe(), str::to_string);
                    let path = join_key("upstreams", &name);
                    let up = match yaml::from_node(v, &path) {
                        Ok(u) => Some(u),
                        Err(e) => by_field::decode(v, &path, e, &mut self.failures(out, errors)),
                    };
                    out.upstreams.push((name, up.map(Arc::new)));
                }
            }
            _ if node.is_null() => {}
            _ => errors.push(self.locate_at(
                node,
                "upstreams",
                format!(
                    "found {}, expected a mapping of upstream groups",
                    node.describe()
                ),
            )),
        }
    }

    fn route_list(&self, node: &Node, out: &mut RoutesConfig, errors: &mut Vec<ConfigError>) {
        match &node.kind {
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let path = join_index("routes", i);
                    let route = match yaml::from_node(item, &path) {
                        Ok(r) => Some(r),
                        Err(e) => by_field::decode(item, &path, e, &mut self.failures(out, errors)),
                    };
                    out.routes.push(route.map(Arc::new));
                }
            }
            _ if node.is_null() => {}
            _ => errors.push(self.locate_at(
                node,
                "routes",
                format!("found {}, expected a list of routes", node.describe()),
            )),
        }
    }

    /// Where the field-by-field decoding of an entry reports.
    fn failures<'a>(
        &'a self,
        out: &'a mut RoutesConfig,
        errors: &'a mut Vec<ConfigError>,
    ) -> by_field::Failures<'a> {
        by_field::Failures {
            file: &self.file,
            errors,
            failed: &mut out.failed,
        }
    }

    fn unknown_field(&self, key: &Node, path: &str, allowed: &[&str]) -> ConfigError {
        let name = key.as_str().map_or_else(|| key.describe(), str::to_string);
        self.locate_at(
            key,
            path,
            format!(
                "found unknown field `{name}`, expected {}",
                yaml::one_of(allowed)
            ),
        )
    }

    fn locate_at(&self, node: &Node, path: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            mark: node.mark,
            path: path.to_string(),
            message,
        }
    }
}

/// Whether a text holds characters no YAML file may hold: C0 controls but tab and line breaks,
/// DEL, and C1 controls (U+0080..U+009F). On bytes: this runs over the whole file on every
/// reload.
pub fn has_control_chars(text: &str) -> bool {
    first_control_char(text).is_some()
}

/// The byte offset of the first character [`has_control_chars`] looks for.
pub fn first_control_char(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = 0;
    loop {
        // Most bytes are plain text: one table lookup each.
        while i < b.len() && !SUSPECT[b[i] as usize] {
            i += 1;
        }
        let &c = b.get(i)?;
        if c != 0xc2 || matches!(b.get(i + 1), Some(0x80..=0x9f)) {
            return Some(i);
        }
        i += 1;
    }
}

/// Bytes that are, or may start (0xC2: U+0080..U+00BF), a control character.
const SUSPECT: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = !matches!(c as u8, b'\t' | b'\n' | b'\r');
        c += 1;
    }
    table[0x7f] = true;
    table[0xc2] = true;
    table
};

/// The error for `bytes` (of `file`) that are not UTF-8 text, located at the first byte that is
/// not: the same for a routes file and an etcd value.
pub fn not_utf8(file: String, bytes: &[u8], e: std::str::Utf8Error) -> ConfigError {
    let at = e.valid_up_to();
    ConfigError {
        file,
        mark: mark_of_offset(bytes, at),
        path: String::new(),
        message: format!(
            "found a byte that is not UTF-8 text (offset {at}), expected a YAML text file"
        ),
    }
}
