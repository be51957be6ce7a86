//! Counters and histograms that continue across an upgrade. The old process hands over every
//! non-zero sample of its counter and histogram families (the Prometheus text it serves, all
//! families at once: requests, errors, latency, reloads, rollouts, TLS, downstream, ...); the
//! new process adds them to what it counts itself, sample by sample, when it renders a scrape
//! ([`Carried::apply`]), so a series never goes back. Gauges (versions, expiries, in flight) are
//! the process's own and not carried; nor are `process_*` (CPU, memory of this process).
//!
//! Pure text work: [`snapshot`] reads an exposition, [`Carried::apply`] writes one with the
//! offsets added (samples the new process does not have are written in their family's block,
//! families it does not have at the end, with their HELP and TYPE).

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::Mutex;

/// The carried samples of one family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Family {
    pub name: String,
    /// `counter` or `histogram`.
    pub kind: String,
    pub help: String,
    /// (the sample's name and labels as written, its value).
    pub samples: Vec<(String, f64)>,
}

/// The counter and histogram samples of one exposition, the zeros left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub families: Vec<Family>,
}

/// Families whose values belong to one process only.
fn carried_kind(name: &str, kind: &str) -> bool {
    matches!(kind, "counter" | "histogram") && !name.starts_with("process_")
}

/// A sample line's key (name and labels) and value.
fn sample(line: &str) -> Option<(&str, f64)> {
    let (key, value) = line.rsplit_once(' ')?;
    Some((key, value.trim().parse().ok()?))
}

/// The family a `# HELP`/`# TYPE` line is about, and the rest of it.
fn meta<'a>(line: &'a str, what: &str) -> Option<(&'a str, &'a str)> {
    let rest = line.strip_prefix(what)?;
    Some(rest.split_once(' ').unwrap_or((rest, "")))
}

/// Reads the counter and histogram samples of `text` (non-zero ones).
pub fn snapshot(text: &str) -> Counters {
    let mut families: Vec<Family> = Vec::new();
    let mut help: HashMap<&str, &str> = HashMap::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if let Some((name, h)) = meta(line, "# HELP ") {
            help.insert(name, h);
        } else if let Some((name, kind)) = meta(line, "# TYPE ") {
            current = carried_kind(name, kind).then(|| {
                match families.iter().position(|f| f.name == name) {
                    Some(i) => i,
                    None => {
                        families.push(Family {
                            name: name.to_string(),
                            kind: kind.to_string(),
                            help: help.get(name).copied().unwrap_or_default().to_string(),
                            samples: Vec::new(),
                        });
                        families.len() - 1
                    }
                }
            });
        } else if line.starts_with('#') {
            continue;
        } else if let (Some(i), Some((key, value))) = (current, sample(line)) {
            if value != 0.0 {
                families[i].samples.push((key.to_string(), value));
            }
        }
    }
    families.retain(|f| !f.samples.is_empty());
    Counters { families }
}

/// `later - earlier`, sample by sample (what a process counted between two snapshots); samples
/// that did not grow are left out.
pub fn delta(later: &Counters, earlier: &Counters) -> Counters {
    let before: HashMap<(&str, &str), f64> = (earlier.families.iter())
        .flat_map(|f| {
            f.samples
                .iter()
                .map(move |(k, v)| ((f.name.as_str(), k.as_str()), *v))
        })
        .collect();
    let families = (later.families.iter())
        .map(|f| Family {
            samples: (f.samples.iter())
                .filter_map(|(k, v)| {
                    let grown = v - before
                        .get(&(f.name.as_str(), k.as_str()))
                        .copied()
                        .unwrap_or(0.0);
                    (grown > 0.0).then(|| (k.clone(), grown))
                })
                .collect(),
            ..f.clone()
        })
        .filter(|f| !f.samples.is_empty())
        .collect();
    Counters { families }
}

/// The sum of two snapshots, sample by sample.
pub fn sum(a: &Counters, b: &Counters) -> Counters {
    let mut out = a.clone();
    for f in &b.families {
        match out.families.iter_mut().find(|o| o.name == f.name) {
            Some(o) => {
                for (k, v) in &f.samples {
                    match o.samples.iter_mut().find(|(ok, _)| ok == k) {
                        Some((_, ov)) => *ov += v,
                        None => o.samples.push((k.clone(), *v)),
                    }
                }
            }
            None => out.families.push(f.clone()),
        }
    }
    out
}

/// What this process adds to its own counters: everything handed to it.
#[derive(Debug, Default)]
pub struct Carried {
    carried: Mutex<Counters>,
}

impl Carried {
    /// Adds `more` (the old process's counters, or what it counted after it wrote them).
    pub fn add(&self, more: &Counters) {
        let mut c = self.carried.lock().unwrap_or_else(|p| p.into_inner());
        *c = sum(&c, more);
    }

    pub fn is_empty(&self) -> bool {
        (self.carried.lock().unwrap_or_else(|p| p.into_inner()))
            .families
            .is_empty()
    }

    /// `text` with the carried values added (see the module doc).
    pub fn apply(&self, text: String) -> String {
        let carried = self
            .carried
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if carried.families.is_empty() {
            return text;
        }
        apply(&text, &carried)
    }
}

fn apply(text: &str, carried: &Counters) -> String {
    let by_name: HashMap<&str, (&Family, HashMap<&str, f64>)> = (carried.families.iter())
        .map(|f| {
            let samples = f.samples.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            (f.name.as_str(), (f, samples))
        })
        .collect();
    let mut out = String::with_capacity(text.len() + 4096);
    let mut seen: HashSet<&str> = HashSet::new();
    let mut used: HashSet<(&str, &str)> = HashSet::new();
    let mut current: Option<&str> = None;
    // The samples of the family just ended that this process did not write.
    let close = |family: Option<&str>, out: &mut String, used: &HashSet<(&str, &str)>| {
        let Some((f, _)) = family.and_then(|n| by_name.get(n)) else {
            return;
        };
        for (k, v) in &f.samples {
            if !used.contains(&(f.name.as_str(), k.as_str())) {
                let _ = writeln!(out, "{k} {v}");
            }
        }
    };
    for line in text.lines() {
        if let Some((name, _)) = meta(line, "# HELP ").or_else(|| meta(line, "# TYPE ")) {
            if Some(name) != current {
                close(current, &mut out, &used);
                current = Some(name);
                seen.insert(name);
            }
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let offset = current
            .and_then(|c| by_name.get(c))
            .zip(sample(line))
            .and_then(|((f, samples), (key, value))| {
                samples.get(key).map(|o| (f.name.as_str(), key, value + o))
            });
        match offset {
            Some((family, key, total)) => {
                used.insert((family, key));
                let _ = writeln!(out, "{key} {total}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    close(current, &mut out, &used);
    for f in carried
        .families
        .iter()
        .filter(|f| !seen.contains(f.name.as_str()))
    {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {}",
            f.name, f.help, f.name, f.kind
        );
        for (k, v) in &f.samples {
            let _ = writeln!(out, "{k} {v}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "# HELP dyegate_requests_total Requests.\n# TYPE dyegate_requests_total counter\n\
        dyegate_requests_total{route=\"a\",status_class=\"2xx\"} 10\n\
        dyegate_requests_total{route=\"a\",status_class=\"5xx\"} 0\n\
        dyegate_requests_total{route=\"gone\",status_class=\"2xx\"} 4\n\
        # HELP dyegate_routing_version Version.\n# TYPE dyegate_routing_version gauge\ndyegate_routing_version 7\n\
        # HELP dyegate_request_duration_seconds Duration.\n# TYPE dyegate_request_duration_seconds histogram\n\
        dyegate_request_duration_seconds_bucket{route=\"a\",le=\"0.1\"} 9\n\
        dyegate_request_duration_seconds_bucket{route=\"a\",le=\"+Inf\"} 10\n\
        dyegate_request_duration_seconds_sum{route=\"a\"} 0.5\n\
        dyegate_request_duration_seconds_count{route=\"a\"} 10\n\
        # HELP dyegate_old_only_total Only the old binary has it.\n# TYPE dyegate_old_only_total counter\ndyegate_old_only_total 3\n\
        # HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\n";

    const NEW: &str = "# HELP dyegate_requests_total Requests.\n# TYPE dyegate_requests_total counter\n\
        dyegate_requests_total{route=\"a\",status_class=\"2xx\"} 2\n\
        dyegate_requests_total{route=\"a\",status_class=\"5xx\"} 1\n\
        # HELP dyegate_routing_version Version.\n# TYPE dyegate_routing_version gauge\ndyegate_routing_version 1\n\
        # HELP dyegate_request_duration_seconds Duration.\n# TYPE dyegate_request_duration_seconds histogram\n\
        dyegate_request_duration_seconds_bucket{route=\"a\",le=\"0.1\"} 2\n\
        dyegate_request_duration_seconds_bucket{route=\"a\",le=\"+Inf\"} 3\n\
        dyegate_request_duration_seconds_sum{route=\"a\"} 0.25\n\
        dyegate_request_duration_seconds_count{route=\"a\"} 3\n\
        # HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 0.1\n";

    #[test]
    fn counters_and_histograms_continue_and_gauges_and_process_metrics_do_not() {
        let carried = Carried::default();
        carried.add(&snapshot(OLD));
        let out = carried.apply(NEW.to_string());
        assert_eq!(
            out,
            "# HELP dyegate_requests_total Requests.\n# TYPE dyegate_requests_total counter\n\
             dyegate_requests_total{route=\"a\",status_class=\"2xx\"} 12\n\
             dyegate_requests_total{route=\"a\",status_class=\"5xx\"} 1\n\
             dyegate_requests_total{route=\"gone\",status_class=\"2xx\"} 4\n\
             # HELP dyegate_routing_version Version.\n# TYPE dyegate_routing_version gauge\ndyegate_routing_version 1\n\
             # HELP dyegate_request_duration_seconds Duration.\n# TYPE dyegate_request_duration_seconds histogram\n\
             dyegate_request_duration_seconds_bucket{route=\"a\",le=\"0.1\"} 11\n\
             dyegate_request_duration_seconds_bucket{route=\"a\",le=\"+Inf\"} 13\n\
             dyegate_request_duration_seconds_sum{route=\"a\"} 0.75\n\
             dyegate_request_duration_seconds_count{route=\"a\"} 13\n\
             # HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 0.1\n\
             # HELP dyegate_old_only_total Only the old binary has it.\n# TYPE dyegate_old_only_total counter\ndyegate_old_only_total 3\n"
        );
        // What a scrape shows is what the next process is handed: a second upgrade carries all.
        let again = snapshot(&out);
        let total = |c: &Counters, name: &str, key: &str| {
            c.families
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.samples.iter().find(|(k, _)| k == key))
                .map(|(_, v)| *v)
        };
        assert_eq!(
            total(
                &again,
                "dyegate_requests_total",
                "dyegate_requests_total{route=\"a\",status_class=\"2xx\"}"
            ),
            Some(12.0)
        );
        assert_eq!(
            total(
                &again,
                "process_cpu_seconds_total",
                "process_cpu_seconds_total"
            ),
            None
        );
        assert_eq!(
            total(&again, "dyegate_routing_version", "dyegate_routing_version"),
            None
        );
    }

    #[test]
    fn a_delta_is_what_grew_and_adding_it_later_completes_the_count() {
        let at_handover = snapshot(OLD);
        let at_exit =
            snapshot(&OLD.replace("status_class=\"2xx\"} 10", "status_class=\"2xx\"} 15"));
        let d = delta(&at_exit, &at_handover);
        assert_eq!(d.families.len(), 1);
        assert_eq!(
            d.families[0].samples,
            vec![(
                "dyegate_requests_total{route=\"a\",status_class=\"2xx\"}".to_string(),
                5.0
            )]
        );
        let carried = Carried::default();
        carried.add(&at_handover);
        carried.add(&d);
        assert!(carried
            .apply(NEW.to_string())
            .contains("dyegate_requests_total{route=\"a\",status_class=\"2xx\"} 17\n"));
        assert!(Carried::default().is_empty());
        assert_eq!(Carried::default().apply(NEW.to_string()), NEW);
    }
}
