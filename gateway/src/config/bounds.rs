//! What a configuration text may cost before any YAML parser sees it: its size, and how deep it
//! nests, found in one linear pass over the bytes.
//!
//! Both YAML parsers dyegate uses scan flow collections (`[[[[...`) in time quadratic in their
//! depth: at every token they walk the stack of possible simple keys, one per open flow level, and
//! they keep scanning ahead while a key is possible — libyaml (serde_yaml, the fast path) over the
//! whole document before serde's recursion limit is ever checked. A 20,000-level, 40 KB file
//! took 1.7 s to reject. This pass bounds the depth first, so no parser ever sees such a text.
//!
//! The scan follows YAML's tokens closely enough to never count *less* than a parser would nest:
//! quoted scalars (multi-line ones included), comments, block scalars (`|`, `>`) and multi-line
//! plain scalars are skipped only where YAML itself reads them as text; anything ambiguous is
//! counted. It may count a few levels more than a parser (a scalar after `- `), never fewer.

use super::error::{ConfigError, Mark};

/// How deep collections may nest (the root collection is level 0).
pub const MAX_DEPTH: usize = 128;
/// `reload.max_file_bytes`'s default.
pub const DEFAULT_MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// The message of a text nested past [`MAX_DEPTH`], from this scan and from the parsers alike.
pub fn too_deep() -> String {
    format!("nesting deeper than {MAX_DEPTH} levels")
}

/// Checks size then depth; the error names the file and, for depth, the line and column of the
/// first collection past the limit.
pub fn check(file: &str, bytes: &[u8], max_file_bytes: usize) -> Result<(), ConfigError> {
    check_size(file, bytes, max_file_bytes)?;
    check_depth(file, bytes)
}

/// The size half of [`check`].
pub fn check_size(file: &str, bytes: &[u8], max_file_bytes: usize) -> Result<(), ConfigError> {
    if bytes.len() > max_file_bytes {
        return Err(too_big(file, bytes.len() as u64, max_file_bytes));
    }
    Ok(())
}

/// The depth half of [`check`].
pub fn check_depth(file: &str, bytes: &[u8]) -> Result<(), ConfigError> {
    match too_deep_at(bytes) {
        None => Ok(()),
        Some(at) => Err(ConfigError {
            file: file.to_string(),
            mark: mark_of_offset(bytes, at),
            path: String::new(),
            message: too_deep(),
        }),
    }
}

/// Reads a file of at most `max_file_bytes` without reading more of a bigger one (its size is
/// checked first, and the read stops past the limit should it grow meanwhile).
pub fn read(path: &std::path::Path, max_file_bytes: usize) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let file = path.display().to_string();
    let unreadable = |e: std::io::Error| super::load::unreadable(&file, &e);
    let f = std::fs::File::open(path).map_err(unreadable)?;
    let len = f.metadata().map_err(unreadable)?.len();
    if len > max_file_bytes as u64 {
        return Err(too_big(&file, len, max_file_bytes));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max_file_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() > max_file_bytes {
        return Err(too_big(&file, bytes.len() as u64, max_file_bytes));
    }
    Ok(bytes)
}

fn too_big(file: &str, len: u64, max_file_bytes: usize) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        mark: Mark { line: 1, col: 1 },
        path: String::new(),
        message: format!(
            "found a file of {len} bytes, expected at most {max_file_bytes} (reload.max_file_bytes)"
        ),
    }
}

/// Line and column (in characters) of a byte offset.
pub fn mark_of_offset(bytes: &[u8], at: usize) -> Mark {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    // Characters, not bytes: count every byte that does not continue a UTF-8 sequence.
    let col = before[line_start..]
        .iter()
        .filter(|b| (**b & 0xC0) != 0x80)
        .count()
        + 1;
    Mark { line, col }
}

/// The offset of the first collection opened past [`MAX_DEPTH`], if any.
pub fn too_deep_at(bytes: &[u8]) -> Option<usize> {
    Scan::new(bytes).run()
}

/// Bytes that change nothing inside a token (a plain scalar, past its first byte) in block
/// context: all but line breaks (`\n`, `\r`, the first byte of U+2028/U+2029), blanks (before
/// a comment or after a `:`) and `:`/`#`.
const INERT: [bool; 256] = inert(b"\n\r\xE2 \t:#");
/// The same in flow context, where `,` and brackets end a token too.
const INERT_IN_FLOW: [bool; 256] = inert(b"\n\r\xE2 \t:#,[]{}");

const fn inert(special: &[u8]) -> [bool; 256] {
    let mut table = [true; 256];
    let mut k = 0;
    while k < special.len() {
        table[special[k] as usize] = false;
        k += 1;
    }
    table
}

/// The scanner's state. Columns are byte offsets from the line start (indentation is spaces).
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    line_start: usize,
    /// Indentation of the open block collections (strictly increasing).
    block: Vec<usize>,
    /// Open flow collections.
    flow: usize,
    /// At a place where a node may start (so `"`, `'`, `[`, `{`, `|`, `>` are indicators).
    token: bool,
    /// The previous byte was whitespace (so `#` starts a comment).
    space: bool,
    /// Column of the node the next value belongs to: the key of `key: `, the dash of `- `.
    parent: Option<usize>,
    /// Column of the token being read (a key, once `: ` follows it).
    start: usize,
    /// Block context: a plain scalar is open at the end of the line; lines indented past this
    /// column continue it.
    plain: Option<usize>,
    /// Block scalar content: lines indented past this column (and blank lines) are text.
    literal: Option<usize>,
    /// Flow context: the last token was a quoted scalar or a closed collection, so `:` right
    /// after it is a value indicator (JSON style `{"a":1}`).
    json_key: bool,
}

impl<'a> Scan<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scan {
            b,
            i: 0,
            line_start: 0,
            block: Vec::new(),
            flow: 0,
            token: true,
            space: true,
            parent: None,
            start: 0,
            plain: None,
            literal: None,
            json_key: false,
        }
    }

    fn depth(&self) -> usize {
        self.block.len() + self.flow
    }

    /// One pass; every byte is looked at a bounded number of times.
    fn run(mut self) -> Option<usize> {
        self.line();
        while self.i < self.b.len() {
            let c = self.b[self.i];
            if let Some(len) = self.line_break(self.i) {
                self.i += len;
                self.line_start = self.i;
                self.line();
                continue;
            }
            match c {
                b' ' | b'\t' => {
                    self.space = true;
                    self.i += 1;
                    continue;
                }
                b'#' if self.space => {
                    self.skip_to_line_end();
                    continue;
                }
                b'"' | b'\'' if self.token => {
                    self.start = self.col();
                    self.quoted(c);
                    self.after_token();
                    self.json_key = self.flow > 0;
                    continue;
                }
                b'[' | b'{' if self.token || self.flow > 0 => {
                    self.flow += 1;
                    if self.depth() > MAX_DEPTH + 1 {
                        return Some(self.i);
                    }
                    self.token = true;
                    self.plain = None;
                }
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    self.token = false;
                    self.json_key = true;
                    self.i += 1;
                    self.space = false;
                    continue;
                }
                b',' if self.flow > 0 => self.token = true,
                b'|' | b'>' if self.token && self.flow == 0 => {
                    self.literal = Some(self.parent_col());
                    self.plain = None;
                    self.skip_to_line_end();
                    continue;
                }
                b'-' | b'?' if self.token && self.flow == 0 && self.blank_after(self.i + 1) => {
                    // A block entry or explicit key: a block collection at this column.
                    let col = self.col();
                    if self.open_block(col) {
                        return Some(self.i);
                    }
                    self.parent = Some(col);
                    self.token = true;
                    self.plain = None;
                }
                b'?' if self.flow > 0 && self.blank_after(self.i + 1) => self.token = true,
                b':' if self.blank_after(self.i + 1) || (self.flow > 0 && self.json_key) => {
                    // In block context, a mapping at its key's column.
                    if self.flow == 0 && self.open_block(self.start) {
                        return Some(self.line_start + self.start);
                    }
                    self.parent = Some(self.start);
                    self.token = true;
                    self.plain = None;
                }
                _ => {
                    if self.token {
                        self.start = self.col();
                        if self.flow == 0 {
                            self.plain = Some(self.parent_col());
                        }
                    }
                    self.token = false;
                    // The rest of a token: only the bytes below end it or matter inside it.
                    let inert = if self.flow > 0 {
                        &INERT_IN_FLOW
                    } else {
                        &INERT
                    };
                    self.i += 1;
                    while self.i < self.b.len() && inert[self.b[self.i] as usize] {
                        self.i += 1;
                    }
                    self.json_key = false;
                    self.space = false;
                    continue;
                }
            }
            self.json_key = false;
            self.space = false;
            self.i += 1;
        }
        None
    }

    fn col(&self) -> usize {
        self.i - self.line_start
    }

    /// The column a value's continuation lines must be indented past.
    fn parent_col(&self) -> usize {
        match self.parent {
            Some(p) => p,
            // A node at the start of its line belongs to the innermost open block collection.
            None => self.block.last().copied().unwrap_or(0),
        }
    }

    fn after_token(&mut self) {
        self.token = false;
        self.space = false;
        self.plain = None;
    }

    /// Line breaks as libyaml reads them: LF, CR LF, a lone CR, and U+2028 / U+2029.
    fn line_break(&self, i: usize) -> Option<usize> {
        match self.b[i] {
            b'\n' => Some(1),
            b'\r' if self.b.get(i + 1) == Some(&b'\n') => Some(2),
            b'\r' => Some(1),
            0xE2 if self.b.get(i + 1) == Some(&0x80)
                && matches!(self.b.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                Some(3)
            }
            _ => None,
        }
    }

    fn blank_after(&self, i: usize) -> bool {
        i >= self.b.len() || matches!(self.b[i], b' ' | b'\t') || self.line_break(i).is_some()
    }

    fn skip_to_line_end(&mut self) {
        while self.i < self.b.len() && self.line_break(self.i).is_none() {
            self.i += 1;
        }
    }

    /// A block collection at `col` (a key's or a dash's): one more level unless one is open at
    /// that column already. True past the limit.
    fn open_block(&mut self, col: usize) -> bool {
        while self.block.last().is_some_and(|c| *c > col) {
            self.block.pop();
        }
        if self.block.last() != Some(&col) {
            self.block.push(col);
        }
        self.depth() > MAX_DEPTH + 1
    }

    /// Skips a quoted scalar (it may span lines, in any context).
    fn quoted(&mut self, quote: u8) {
        self.i += 1;
        while self.i < self.b.len() {
            let c = self.b[self.i];
            self.i += 1;
            if quote == b'"' && c == b'\\' {
                self.i += 1;
            } else if c == quote {
                if quote == b'\'' && self.b.get(self.i) == Some(&b'\'') {
                    self.i += 1;
                } else {
                    return;
                }
            } else if c == b'\n' {
                self.line_start = self.i;
            }
        }
    }

    /// At the start of a line: block scalar text, plain scalar continuation, or block structure
    /// by indentation.
    fn line(&mut self) {
        let mut j = self.i;
        while j < self.b.len() && self.b[j] == b' ' {
            j += 1;
        }
        let indent = j - self.i;
        let blank = j >= self.b.len() || self.line_break(j).is_some();
        if let Some(bound) = self.literal {
            if blank || indent > bound {
                self.i = j;
                self.skip_to_line_end();
                return;
            }
            self.literal = None;
        }
        self.i = j;
        self.space = true;
        if self.flow > 0 || blank {
            return;
        }
        if self.b[j] == b'#' {
            self.plain = None;
            return;
        }
        if let Some(p) = self.plain {
            if indent > p {
                // More text of the plain scalar of the line before.
                self.token = false;
                return;
            }
        }
        self.plain = None;
        self.parent = None;
        self.token = true;
        if indent == 0
            && (self.b[j..].starts_with(b"---") || self.b[j..].starts_with(b"..."))
            && self.blank_after(j + 3)
        {
            // A document marker: what follows starts at the root again.
            self.block.clear();
            self.i = j + 3;
            return;
        }
        if self.b[j] == b'%' && indent == 0 {
            self.skip_to_line_end();
            return;
        }
        // Collections indented deeper than this line are closed.
        while self.block.last().is_some_and(|c| *c > indent) {
            self.block.pop();
        }
        self.start = indent;
    }
}

/// YAML's limit on an implicit (`key: value`) key: one line, at most 1024 characters.
const MAX_IMPLICIT_KEY_CHARS: usize = 1024;

/// A routes text whose root cannot be a mapping, judged from its first node alone: the offset
/// of that node and what it is. A text that is one 50 MB scalar or list is rejected after a few
/// KB instead of after every parser has read all of it. `None` when the root may be a mapping
/// (a `key:` within YAML's 1024-character, one-line limit on implicit keys, `{`, `? `, or a
/// node property or alias this check does not judge): the parsers decide.
pub fn not_a_mapping_root(b: &[u8]) -> Option<(usize, String)> {
    let at = first_node(b)?;
    let rest = &b[at..];
    if !plain_text(&rest[..rest.len().min(4 * (MAX_IMPLICIT_KEY_CHARS + 2))]) {
        // Bytes that are not text are the error to report, where they are (`load::Source`).
        return None;
    }
    let blank_at = |i: usize| i >= rest.len() || matches!(rest[i], b' ' | b'\t' | b'\n' | b'\r');
    match rest[0] {
        b'[' => Some((at, "a list".into())),
        b'-' if blank_at(1) => Some((at, "a list".into())),
        b'{' | b'&' | b'!' | b'*' => None,
        b'?' if blank_at(1) => None,
        b'|' | b'>' => Some((at, "a block of text".into())),
        b'"' | b'\'' => (!quoted_key(rest)).then(|| (at, first_line(rest))),
        _ => (!plain_key(rest)).then(|| (at, first_line(rest))),
    }
}

/// UTF-8 (a sequence cut at the end counts) without control characters.
fn plain_text(b: &[u8]) -> bool {
    let text = match std::str::from_utf8(b) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => {
            // Valid up to a sequence cut at the end.
            std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !super::load::has_control_chars(text)
}

/// The first line of a node as a message quotes it: at most 40 characters, then `…`.
fn first_line(b: &[u8]) -> String {
    let b = &b[..b.len().min(4 * QUOTED_CHARS + 4)];
    let end = b
        .iter()
        .position(|c| matches!(c, b'\n' | b'\r'))
        .unwrap_or(b.len());
    let line = String::from_utf8_lossy(&b[..end]);
    super::yaml::quote(line.trim_end())
}

/// How much of a long text an error message quotes.
pub const QUOTED_CHARS: usize = 80;

/// The offset of the first node: after a byte-order mark, blank and comment lines, directives
/// and a `---` marker (with the node on the marker's line, if any).
fn first_node(b: &[u8]) -> Option<usize> {
    let mut i = if b.starts_with("\u{feff}".as_bytes()) {
        3
    } else {
        0
    };
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        let line_start = i == 0 || b[i - 1] == b'\n' || b[i - 1] == b'\r';
        let rest = b.get(i..).filter(|r| !r.is_empty())?;
        let directive = rest[0] == b'%' && line_start;
        if rest[0] == b'#' || directive {
            i += rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len());
        } else if line_start
            && rest.starts_with(b"---")
            && rest
                .get(3)
                .is_none_or(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            i += 3;
        } else {
            return Some(i);
        }
    }
}

/// A plain scalar followed by `:` and a blank on its own line, within the key limit.
fn plain_key(b: &[u8]) -> bool {
    let mut chars = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\n' | b'\r' => return false,
            b':' if matches!(b.get(i + 1), None | Some(b' ' | b'\t' | b'\n' | b'\r')) => {
                return true
            }
            b'#' if i > 0 && matches!(b[i - 1], b' ' | b'\t') => return false,
            _ => {}
        }
        if c & 0xC0 != 0x80 {
            chars += 1;
            if chars > MAX_IMPLICIT_KEY_CHARS {
                return false;
            }
        }
    }
    false
}

/// A quoted scalar closed on its own line, within the key limit, then `:` after blanks.
fn quoted_key(b: &[u8]) -> bool {
    let quote = b[0];
    let mut i = 1;
    let mut chars = 1;
    while i < b.len() && chars <= MAX_IMPLICIT_KEY_CHARS {
        let c = b[i];
        i += 1;
        if c & 0xC0 != 0x80 {
            chars += 1;
        }
        match c {
            b'\n' | b'\r' => return false,
            b'\\' if quote == b'"' => i += 1,
            b'\'' if quote == b'\'' && b.get(i) == Some(&b'\'') => i += 1,
            c if c == quote => {
                let after = b[i..].iter().position(|c| !matches!(c, b' ' | b'\t'));
                return after.is_some_and(|p| b[i + p] == b':');
            }
            _ => {}
        }
    }
    false
}
