//! The gateway's `GET /metrics` as tests read it: every sample of the Prometheus text format in a
//! map from series (name + sorted labels) to value, so an assertion can name one series exactly
//! or compare a whole family with what the traffic should have produced.
//!
//! The parser is strict on purpose: a line it does not understand fails the test, where a
//! lenient scraper (e.g. the `prometheus-parse` crate, which skips such lines) would hide an
//! exposition bug.
//!
//! ```no_run
//! # async fn demo(gw: &dyegate_suite::Dyegate) {
//! let m = gw.metrics().await;
//! let ok = m.value(
//!     "dyegate_requests_total",
//!     &[("route", "shop"), ("upstream_group", "shop-stable"), ("env_tag", "none"), ("status_class", "2xx")],
//! );
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::client::Req;
use crate::gateway::Dyegate;
use crate::wait::poll_until;

/// A series' labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// One series: metric name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub name: String,
    pub labels: Labels,
}

impl Series {
    /// `name{a="x",b="y"}` from a name and (label, value) pairs in any order.
    pub fn new(name: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The value of label `name`, if the series has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let pairs: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            write!(f, "{{{}}}", pairs.join(","))?;
        }
        Ok(())
    }
}

/// One scrape: every sample, and the `# TYPE` of every family.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: BTreeMap<Series, f64>,
    types: BTreeMap<String, String>,
    text: String,
}

impl Scrape {
    /// Parses the text exposition format (version 0.0.4). Panics, naming the line, on anything
    /// else: a sample without a value, a malformed label set, a series given twice.
    pub fn parse(text: &str) -> Self {
        let mut scrape = Scrape {
            text: text.to_owned(),
            ..Scrape::default()
        };
        for (i, line) in text.lines().enumerate() {
            let fail = |why: &str| -> ! { panic!("/metrics line {}: {why}: {line:?}", i + 1) };
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                match words.next() {
                    Some("TYPE") => {
                        let (Some(name), Some(kind), None) =
                            (words.next(), words.next(), words.next())
                        else {
                            fail("expected `# TYPE name kind`")
                        };
                        scrape.types.insert(name.to_owned(), kind.to_owned());
                    }
                    Some("HELP") | None => {}
                    Some(_) => {} // other comments are allowed by the format
                }
                continue;
            }
            let (series, rest) = parse_series(line).unwrap_or_else(|why| fail(&why));
            let value = rest.trim();
            // An optional timestamp may follow the value; the prometheus crate writes none.
            let value = value.split_whitespace().next().unwrap_or("");
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v
                    .parse::<f64>()
                    .unwrap_or_else(|_| fail("the value is not a number")),
            };
            if scrape.samples.insert(series, value).is_some() {
                fail("the series appears twice");
            }
        }
        scrape
    }

    /// The exposition as received, for assertion messages.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value of one series, `None` when it is absent.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.get(&Series::new(name, labels)).copied()
    }

    /// The value of `series`, `None` when it is absent.
    pub fn at(&self, series: &Series) -> Option<f64> {
        self.samples.get(series).copied()
    }

    /// The value of one series; panics (printing the family) when it is absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            panic!(
                "no series {} in /metrics; the family has:\n{}",
                Series::new(name, labels),
                self.dump(name)
            )
        })
    }

    /// Every series of metric `name` (for a histogram: `<name>_bucket`, `_sum`, `_count`
    /// are metrics of their own), with its value.
    pub fn family(&self, name: &str) -> BTreeMap<Series, f64> {
        self.samples
            .iter()
            .filter(|(s, _)| s.name == name)
            .map(|(s, v)| (s.clone(), *v))
            .collect()
    }

    /// The sum over every series of `name` whose labels include all of `matching`.
    pub fn sum(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(s, _)| s.name == name && matching.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .map(|(_, v)| v)
            .sum()
    }

    /// How many series there are whose name starts with `prefix`.
    pub fn count_series(&self, prefix: &str) -> usize {
        self.samples
            .keys()
            .filter(|s| s.name.starts_with(prefix))
            .count()
    }

    /// Every series, in order.
    pub fn series(&self) -> impl Iterator<Item = (&Series, f64)> {
        self.samples.iter().map(|(s, v)| (s, *v))
    }

    /// The `# TYPE` of family `name` (`counter`, `gauge`, `histogram`, ...).
    pub fn kind(&self, name: &str) -> Option<&str> {
        self.types.get(name).map(String::as_str)
    }

    /// The family's lines, one per series, for assertion messages.
    pub fn dump(&self, name: &str) -> String {
        self.family(name)
            .iter()
            .map(|(s, v)| format!("  {s} {v}\n"))
            .collect()
    }

    /// Asserts that every series of `name` has the value `expected` gives it and every other
    /// series of the family is 0, and that each expected series exists. The message lists every
    /// difference, so one failing run shows the whole picture.
    pub fn assert_family(&self, name: &str, expected: &BTreeMap<Series, f64>) {
        let actual = self.family(name);
        let mut diffs = Vec::new();
        for (series, want) in expected {
            match actual.get(series) {
                None => diffs.push(format!("  {series}: missing, want {want}")),
                Some(got) if got != want => diffs.push(format!("  {series}: {got}, want {want}")),
                Some(_) => {}
            }
        }
        for (series, got) in &actual {
            if !expected.contains_key(series) && *got != 0.0 {
                diffs.push(format!("  {series}: {got}, want 0"));
            }
        }
        assert!(
            diffs.is_empty(),
            "{name} differs from the traffic sent:\n{}\nthe whole family:\n{}",
            diffs.join("\n"),
            self.dump(name)
        );
    }
}

/// `name` or `name{labels}` at the start of a sample line; returns the series and the rest.
fn parse_series(line: &str) -> Result<(Series, &str), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("expected label=\"value\"")?;
            let label = rest[..eq].trim();
            if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {label:?}"));
            }
            let (value, after) = parse_quoted(&rest[eq + 1..])?;
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} given twice"));
            }
            rest = after;
        }
    }
    if !rest.starts_with(' ') {
        return Err("expected a space before the value".into());
    }
    Ok((
        Series {
            name: name.to_owned(),
            labels,
        },
        rest,
    ))
}

/// A label value: `"..."` with `\\`, `\"` and `\n` escapes; returns it and what follows.
fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let body = s.strip_prefix('"').ok_or("expected a quoted label value")?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("bad escape {other:?} in a label value")),
            },
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

/// How long [`Dyegate::wait_for_metrics`] waits by default: requests are counted in the logging
/// phase, just after the response went out, so a count can trail the client by a moment.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(10);

impl Dyegate {
    /// `GET /metrics` on the admin listener, expecting 200 and the Prometheus text content
    /// type (a gateway whose admin API wants a token: [`metrics_with`](Self::metrics_with)).
    pub async fn metrics(&self) -> Scrape {
        self.metrics_with(Req::get("/metrics")).await
    }

    /// `req` (a `GET /metrics` with, say, an `authorization` header) on the admin listener,
    /// expecting 200 and the Prometheus text content type.
    pub async fn metrics_with(&self, req: Req) -> Scrape {
        let resp = req.send(self.admin_addr()).await;
        assert_eq!(resp.status, StatusCode::OK, "GET /metrics: {}", resp.text());
        let content_type = resp.header("content-type").unwrap_or("");
        assert!(
            content_type.starts_with("text/plain"),
            "GET /metrics content-type {content_type:?}"
        );
        Scrape::parse(&resp.text())
    }

    /// Scrapes until `cond` holds and returns that scrape; panics after `timeout` with the last
    /// scrape's `dyegate_` families and the gateway's output.
    pub async fn wait_for_metrics(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        match poll_until(timeout, || self.metrics(), |s| cond(s)).await {
            Ok(scrape) => scrape,
            Err(scrape) => {
                let dyegate: String = scrape
                    .series()
                    .filter(|(s, _)| s.name.starts_with("dyegate_"))
                    .map(|(s, v)| format!("  {s} {v}\n"))
                    .collect();
                panic!(
                    "no {what} within {timeout:?}; last scrape:\n{dyegate}\n{}",
                    self.logs()
                );
            }
        }
    }
}

// The gateway's families, for naming their series in assertions.

/// `dyegate_requests_total`
pub const REQUESTS: &str = "dyegate_requests_total";
/// `dyegate_decisions_total`
pub const DECISIONS: &str = "dyegate_decisions_total";
/// `dyegate_upstream_errors_total`
pub const UPSTREAM_ERRORS: &str = "dyegate_upstream_errors_total";
/// `dyegate_request_duration_seconds` (a histogram: `_bucket`, `_sum`, `_count`)
pub const DURATION: &str = "dyegate_request_duration_seconds";
/// `dyegate_reloads_total`
pub const RELOADS: &str = "dyegate_reloads_total";
/// `dyegate_routing_version`
pub const VERSION: &str = "dyegate_routing_version";
/// `dyegate_last_reload_success_timestamp_seconds`
pub const LAST_RELOAD_SUCCESS: &str = "dyegate_last_reload_success_timestamp_seconds";
/// `dyegate_access_log_dropped_total`
pub const ACCESS_LOG_DROPPED: &str = "dyegate_access_log_dropped_total";

/// `dyegate_requests_total{route, upstream_group, env_tag, status_class}`.
pub fn requests_total(route: &str, group: &str, tag: &str, class: &str) -> Series {
    Series::new(
        REQUESTS,
        &[
            ("route", route),
            ("upstream_group", group),
            ("env_tag", tag),
            ("status_class", class),
        ],
    )
}

/// `dyegate_decisions_total{route, upstream_group, reason}`.
pub fn decisions_total(route: &str, group: &str, reason: &str) -> Series {
    Series::new(
        DECISIONS,
        &[
            ("route", route),
            ("upstream_group", group),
            ("reason", reason),
        ],
    )
}

/// `dyegate_upstream_errors_total{upstream_group, target, kind}`.
pub fn upstream_errors_total(group: &str, target: &str, kind: &str) -> Series {
    Series::new(
        UPSTREAM_ERRORS,
        &[
            ("upstream_group", group),
            ("target", target),
            ("kind", kind),
        ],
    )
}

/// `dyegate_request_duration_seconds_<suffix>{route, upstream_group}` (suffix `count`, `sum`).
pub fn duration_series(suffix: &str, route: &str, group: &str) -> Series {
    Series::new(
        &format!("{DURATION}_{suffix}"),
        &[("route", route), ("upstream_group", group)],
    )
}

/// `dyegate_reloads_total{trigger, result}`.
pub fn reloads_total(trigger: &str, result: &str) -> Series {
    Series::new(RELOADS, &[("trigger", trigger), ("result", result)])
}

impl Scrape {
    /// The latency histogram of (route, group) counted `n` requests: `_count` and the `+Inf`
    /// bucket say `n`, the buckets (from 1 ms) are cumulative, the sum is positive when `n` is.
    pub fn assert_histogram(&self, route: &str, group: &str, n: f64) {
        let count = self.at(&duration_series("count", route, group));
        assert_eq!(count, Some(n), "{DURATION}_count of {route}/{group}");
        let bucket = format!("{DURATION}_bucket");
        let mut buckets: Vec<(f64, f64)> = self
            .family(&bucket)
            .into_iter()
            .filter(|(s, _)| {
                s.label("route") == Some(route) && s.label("upstream_group") == Some(group)
            })
            .map(|(s, v)| {
                let le = match s.label("le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => le
                        .parse()
                        .unwrap_or_else(|_| panic!("{s}: le is not a number")),
                    None => panic!("{s} has no le"),
                };
                (le, v)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(
            buckets.first().map(|b| b.0),
            Some(0.001),
            "the first bucket of {route}/{group} is 1 ms: {buckets:?}"
        );
        assert_eq!(
            buckets.last().copied(),
            Some((f64::INFINITY, n)),
            "the +Inf bucket of {route}/{group}"
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "buckets of {route}/{group} are cumulative: {buckets:?}"
        );
        let sum = self
            .at(&duration_series("sum", route, group))
            .unwrap_or(-1.0);
        assert_eq!(
            sum > 0.0,
            n > 0.0,
            "{DURATION}_sum of {route}/{group}: {sum}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP dyegate_requests_total Requests.\n\
# TYPE dyegate_requests_total counter\n\
dyegate_requests_total{route=\"shop\",upstream_group=\"s\",env_tag=\"none\",status_class=\"2xx\"} 3\n\
dyegate_requests_total{env_tag=\"a\\\"b\\\\c\\nd\",route=\"shop\",status_class=\"2xx\",upstream_group=\"s\"} 1\n\
# TYPE dyegate_routing_version gauge\n\
dyegate_routing_version 2\n\
dyegate_request_duration_seconds_bucket{le=\"+Inf\",route=\"shop\"} 4\n";

    #[test]
    fn parses_names_sorted_labels_escapes_and_values() {
        let m = Scrape::parse(TEXT);
        // Label order in the query does not matter.
        assert_eq!(
            m.get(
                "dyegate_requests_total",
                &[
                    ("status_class", "2xx"),
                    ("env_tag", "none"),
                    ("upstream_group", "s"),
                    ("route", "shop")
                ]
            ),
            Some(3.0)
        );
        assert_eq!(
            m.sum(
                "dyegate_requests_total",
                &[("env_tag", "a\"b\\c\nd"), ("route", "shop")]
            ),
            1.0
        );
        assert_eq!(m.value("dyegate_routing_version", &[]), 2.0);
        assert_eq!(
            m.value(
                "dyegate_request_duration_seconds_bucket",
                &[("le", "+Inf"), ("route", "shop")]
            ),
            4.0
        );
        assert_eq!(m.kind("dyegate_routing_version"), Some("gauge"));
        assert_eq!(m.sum("dyegate_requests_total", &[]), 4.0);
        assert_eq!(m.count_series("dyegate_"), 4);
    }

    #[test]
    #[should_panic(expected = "/metrics line 1: the value is not a number")]
    fn a_sample_without_a_number_fails() {
        Scrape::parse("dyegate_x{a=\"b\"} many\n");
    }

    #[test]
    #[should_panic(expected = "/metrics line 2: the series appears twice")]
    fn a_series_given_twice_fails() {
        Scrape::parse("x{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 1\n");
    }

    #[test]
    #[should_panic(expected = "unterminated label value")]
    fn an_unterminated_label_fails() {
        Scrape::parse("x{a=\"1} 1\n");
    }

    #[test]
    fn assert_family_accepts_zeros_not_listed() {
        let m = Scrape::parse("x{a=\"1\"} 2\nx{a=\"2\"} 0\n");
        let want = [(Series::new("x", &[("a", "1")]), 2.0)]
            .into_iter()
            .collect();
        m.assert_family("x", &want);
    }

    #[test]
    #[should_panic(expected = "x{a=\"2\"}: 5, want 0")]
    fn assert_family_names_an_unexpected_count() {
        let m = Scrape::parse("x{a=\"1\"} 2\nx{a=\"2\"} 5\n");
        let want = [(Series::new("x", &[("a", "1")]), 2.0)]
            .into_iter()
            .collect();
        m.assert_family("x", &want);
    }
}
