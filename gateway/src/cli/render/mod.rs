//! How the admin API's answers read to a person: pure functions from the answer's JSON (and
//! the time now, for "12 min ago") to text. Each states the facts the JSON has, in words and
//! aligned columns; `-o json` prints the JSON itself.

pub mod answer;
pub mod mirrors;
pub mod rollouts;
pub mod status;
pub mod upstreams;
pub mod versions;

use serde_json::Value;
use std::fmt::Write;

/// Columns separated by two spaces, each as wide as its widest cell (the last one not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<w$}", w = widths.get(i).copied().unwrap_or(0));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A length of time in the largest units that fit: `45 s`, `12 min`, `3 h 5 min`, `4 days`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3_600 => format!("{} min", secs / 60),
        3_600..86_400 if (secs % 3_600) / 60 == 0 => format!("{} h", secs / 3_600),
        3_600..86_400 => format!("{} h {} min", secs / 3_600, (secs % 3_600) / 60),
        _ if secs / 86_400 == 1 => "1 day".into(),
        _ => format!("{} days", secs / 86_400),
    }
}

/// Unix seconds of an RFC 3339 time, `None` when it is not one.
pub fn unix(at: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(at).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// `AT (12 min ago)`; `AT` alone when it cannot be read as a time.
pub fn when(at: &str, now_unix: u64) -> String {
    match unix(at) {
        Some(t) if t <= now_unix => format!("{at} ({} ago)", duration(now_unix - t)),
        Some(t) => format!("{at} (in {})", duration(t - now_unix)),
        None => at.to_string(),
    }
}

/// The first 12 hex digits of a sha256, as in the versions table.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// A scalar as text: strings bare, numbers and booleans as JSON writes them, null as `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `n thing` or `n things`.
pub fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

#[cfg(test)]
pub(crate) mod facts {
    //! The check every renderer's test makes: each fact of the JSON is in the text.
    use serde_json::Value;

    /// Every string and number leaf of `json` (its path and its text), skipping `skip`'s keys.
    pub fn leaves(json: &Value, skip: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        walk(json, String::new(), skip, &mut out);
        out
    }

    fn walk(v: &Value, path: String, skip: &[&str], out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if !skip.contains(&k.as_str()) {
                        walk(v, format!("{path}.{k}"), skip, out);
                    }
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, format!("{path}[{i}]"), skip, out);
                }
            }
            Value::String(s) => out.push((path, s.clone())),
            Value::Number(n) => out.push((path, n.to_string())),
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// Panics naming every leaf of `json` (but `skip`'s keys) that `text` does not show.
    pub fn assert_all_shown(json: &Value, text: &str, skip: &[&str]) {
        let missing: Vec<String> = (leaves(json, skip).into_iter())
            .filter(|(path, value)| {
                let shown = if path.ends_with("sha256") {
                    text.contains(super::short_sha(value))
                } else {
                    text.contains(value.as_str())
                };
                !shown
            })
            .map(|(path, value)| format!("{path} = {value}"))
            .collect();
        assert!(
            missing.is_empty(),
            "the table leaves out {missing:#?}\n--- table ---\n{text}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let t = table(
            &["VERSION", "TRIGGER"],
            &[
                vec!["1".into(), "startup".into()],
                vec!["12".into(), "file".into()],
            ],
        );
        assert_eq!(t, "VERSION  TRIGGER\n1        startup\n12       file\n");
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(720), "12 min");
        assert_eq!(duration(7_200), "2 h");
        assert_eq!(duration(11_100), "3 h 5 min");
        assert_eq!(duration(86_400), "1 day");
        assert_eq!(duration(4 * 86_400 + 5), "4 days");
        let at = "2024-05-01T10:00:00.123Z";
        let t = unix(at).unwrap_or_default();
        assert_eq!(t, 1_714_557_600);
        assert_eq!(when(at, t + 720), format!("{at} (12 min ago)"));
        assert_eq!(when("soon", t), "soon");
    }
}
