//! The DNS families: per upstream group and DNS name, the changes of the address set, the
//! failed lookups and the addresses known now. A series exists (at 0) from the moment its
//! (group, name) pair is in the table, and goes with it; label values come from the routes file.

use super::text_format::esc;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// A family as rendered: name, type, help, and its value in a series' counts.
type Family = (&'static str, &'static str, &'static str, fn(&Counts) -> u64);

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    changes: u64,
    failures: u64,
    addresses: usize,
}

/// One per process, shared by the DNS service and the metrics endpoint.
#[derive(Default)]
pub struct DnsMetrics {
    /// (upstream group, name) → counts.
    store: Mutex<BTreeMap<(String, String), Counts>>,
}

impl DnsMetrics {
    fn store(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Counts>> {
        match self.store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The (group, name) pairs of the table now: new ones start at 0, others go, except those
    /// of a name `pending` says is kept for a table about to serve (see [`Self::add`]).
    pub fn follow<'a>(
        &self,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        pending: impl Fn(&str) -> bool,
    ) {
        let pairs: Vec<(String, String)> =
            pairs.map(|(g, n)| (g.to_string(), n.to_string())).collect();
        let mut store = self.store();
        store.retain(|k, _| pairs.contains(k) || pending(&k.1));
        for p in pairs {
            store.entry(p).or_default();
        }
    }

    /// Pairs of a table about to serve: new ones start at 0, none goes (the table serving
    /// still has its own until [`Self::follow`] is given the new table, and keeps these while
    /// their name is pending).
    pub fn add<'a>(&self, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
        let mut store = self.store();
        for (g, n) in pairs {
            store.entry((g.to_string(), n.to_string())).or_default();
        }
    }

    fn with(&self, group: &str, name: &str, f: impl FnOnce(&mut Counts)) {
        if let Some(c) = self.store().get_mut(&(group.to_string(), name.to_string())) {
            f(c);
        }
    }

    /// The name's address set changed (not counted: its first answer).
    pub fn changed(&self, group: &str, name: &str) {
        self.with(group, name, |c| c.changes += 1);
    }

    /// A lookup of the name failed.
    pub fn failed(&self, group: &str, name: &str) {
        self.with(group, name, |c| c.failures += 1);
    }

    pub fn set_addresses(&self, group: &str, name: &str, n: usize) {
        self.with(group, name, |c| c.addresses = n);
    }

    /// Every family of this module in the text format.
    pub fn render(&self, out: &mut String) {
        let store = self.store();
        let families: [Family; 3] = [
            (
                "dyegate_dns_changes_total",
                "counter",
                "Changes of the addresses a DNS name of an upstream group resolves to (its first answer not counted).",
                |c| c.changes,
            ),
            (
                "dyegate_dns_resolve_failures_total",
                "counter",
                "Failed lookups of a DNS name of an upstream group (its last addresses kept serving).",
                |c| c.failures,
            ),
            (
                "dyegate_dns_addresses",
                "gauge",
                "Addresses a DNS name of an upstream group resolves to now.",
                |c| c.addresses as u64,
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((group, host), c) in store.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{name=\"{}\",upstream=\"{}\"}} {}",
                    esc(host),
                    esc(group),
                    value(c)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_follow_the_table_and_count() {
        let m = DnsMetrics::default();
        let none = |_: &str| false;
        m.follow(
            [("orders", "orders.internal"), ("pay", "pay.internal")].into_iter(),
            none,
        );
        m.changed("orders", "orders.internal");
        m.failed("orders", "orders.internal");
        m.failed("orders", "orders.internal");
        m.set_addresses("orders", "orders.internal", 2);
        m.failed("gone", "x"); // not in the table: nothing
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "dyegate_dns_changes_total{name=\"orders.internal\",upstream=\"orders\"} 1",
            "dyegate_dns_resolve_failures_total{name=\"orders.internal\",upstream=\"orders\"} 2",
            "dyegate_dns_addresses{name=\"orders.internal\",upstream=\"orders\"} 2",
            "dyegate_dns_changes_total{name=\"pay.internal\",upstream=\"pay\"} 0",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        assert!(!out.contains("\"gone\""));
        m.follow([("orders", "orders.internal")].into_iter(), none);
        let mut out = String::new();
        m.render(&mut out);
        assert!(!out.contains("pay.internal"), "{out}");
        assert!(out.contains("upstream=\"orders\"} 1"), "counts kept: {out}");
        // A table about to serve adds its pairs and keeps the running table's.
        m.add([("pay", "pay.internal")].into_iter());
        m.failed("pay", "pay.internal");
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(
                "dyegate_dns_resolve_failures_total{name=\"pay.internal\",upstream=\"pay\"} 1"
            ),
            "{out}"
        );
        assert!(out.contains("name=\"orders.internal\""), "{out}");
        // The running table followed again meanwhile: the pending name's series stay.
        m.follow([("orders", "orders.internal")].into_iter(), |n| {
            n == "pay.internal"
        });
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("upstream=\"pay\"} 1"), "{out}");
    }
}
