//! What dyegate knows of every DNS name the routing table uses: its addresses, its last answer
//! and last failure, when it is asked next; and the address book requests read, written here
//! and only here. The service (`service.rs`) does the asking; this file decides what an answer
//! or a failure changes, with no I/O (times are given).

use super::diff::{list, normalized, AddressChange};
use super::resolver::Answer;
use super::schedule::{next_after_answer, next_after_failure, FailureLog, LogLine};
use crate::routing::AddressBook;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Removed addresses remembered per name, for `/upstreams` to show the ones still draining.
const MAX_REMOVED: usize = 64;

/// How long a name asked before its table serves ([`DnsNames::add_new`]) is kept although the
/// table followed does not use it yet: the commit that swaps its table in comes right after
/// the lookup, and the service follows that table within a tick.
const PENDING_KEEP: Duration = Duration::from_secs(60);

/// One name's state.
#[derive(Debug)]
struct NameState {
    /// Addresses as last answered, sorted; empty until the first answer.
    addrs: Arc<[IpAddr]>,
    /// When the last answer came (a failure keeps the addresses it gave).
    resolved_at: Option<SystemTime>,
    /// The last failure and when; cleared by an answer.
    last_error: Option<(String, SystemTime)>,
    log: FailureLog,
    /// Addresses answers took away (the latest [`MAX_REMOVED`], none given again since):
    /// requests still in flight on them finish there, and `/upstreams` shows them draining.
    removed: Vec<IpAddr>,
    next_due: Instant,
    /// A lookup is under way (never two at once).
    asking: bool,
    /// Added for a table not serving yet: kept until then even when the table followed does
    /// not use it (at most [`PENDING_KEEP`]).
    pending_until: Option<Instant>,
}

impl NameState {
    fn new(now: Instant) -> NameState {
        NameState {
            addrs: Arc::from(Vec::new()),
            resolved_at: None,
            last_error: None,
            log: FailureLog::default(),
            removed: Vec::new(),
            next_due: now,
            asking: false,
            pending_until: None,
        }
    }

    /// What a lookup's result changes.
    fn record(
        &mut self,
        result: Result<Answer, String>,
        at: Times,
        interval: Duration,
    ) -> Recorded {
        self.asking = false;
        match result {
            Ok(answer) => {
                self.next_due = next_after_answer(at.now, interval, answer.ttl);
                self.resolved_at = Some(at.wall);
                self.last_error = None;
                let recovered = self.log.answered();
                let first = self.addrs.is_empty();
                let addrs = normalized(answer.addrs);
                if *self.addrs == *addrs {
                    return Recorded::Same { recovered };
                }
                let change = AddressChange::between(&self.addrs, &addrs);
                self.removed.retain(|a| !addrs.contains(a));
                for r in &change.removed {
                    if !self.removed.contains(r) {
                        self.removed.push(*r);
                    }
                }
                let extra = self.removed.len().saturating_sub(MAX_REMOVED);
                self.removed.drain(..extra);
                self.addrs = Arc::from(addrs);
                Recorded::Changed {
                    change,
                    first,
                    recovered,
                }
            }
            Err(error) => {
                self.next_due = next_after_failure(at.now, interval);
                self.last_error = Some((error.clone(), at.wall));
                Recorded::Failed {
                    log: self.log.failed(at.now),
                    error,
                }
            }
        }
    }
}

/// Now, on both clocks: the monotonic one schedules, the wall one is shown.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub now: Instant,
    pub wall: SystemTime,
}

impl Times {
    pub fn now() -> Times {
        Times {
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// What a lookup's result did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The addresses changed (`first`: from none, the name's first answer); `recovered`:
    /// the failures in a row the answer ended.
    Changed {
        change: AddressChange,
        first: bool,
        recovered: u64,
    },
    /// The same addresses again.
    Same { recovered: u64 },
    /// The lookup failed; the last addresses stay. `log`: when this failure is to be logged.
    Failed { log: Option<LogLine>, error: String },
    /// The name is no longer used by the table (the result is dropped).
    Forgotten,
}

/// A name as `/upstreams` and `/status` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameView {
    pub addrs: Arc<[IpAddr]>,
    pub resolved_at: Option<SystemTime>,
    pub last_error: Option<(String, SystemTime)>,
    /// Failed lookups in a row now.
    pub failures: u64,
    pub removed: Vec<IpAddr>,
}

/// Every name the table uses, and the address book its answers fill.
pub struct DnsNames {
    book: Arc<AddressBook>,
    interval: Duration,
    names: Mutex<BTreeMap<Arc<str>, NameState>>,
}

impl DnsNames {
    /// No name yet; names are asked `interval` apart at least (`dns.interval_ms`).
    pub fn new(interval: Duration) -> DnsNames {
        DnsNames {
            book: Arc::default(),
            interval,
            names: Mutex::default(),
        }
    }

    fn names(&self) -> MutexGuard<'_, BTreeMap<Arc<str>, NameState>> {
        match self.names.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The book requests read the addresses from.
    pub fn book(&self) -> &Arc<AddressBook> {
        &self.book
    }

    /// Follows the names the table uses: a new one is due at once, one no longer used is
    /// forgotten (with its addresses), unless it was added for a table about to serve
    /// ([`Self::add_new`]). A name kept keeps everything: a reload with the same names asks
    /// nothing and changes nothing.
    pub fn follow(&self, hosts: &BTreeSet<Arc<str>>, now: Instant) {
        let mut names = self.names();
        let before = names.len();
        names.retain(|h, s| hosts.contains(h) || s.pending_until.is_some_and(|t| now < t));
        let dropped = names.len() != before;
        for h in hosts {
            names
                .entry(h.clone())
                .or_insert_with(|| NameState::new(now))
                .pending_until = None;
        }
        if dropped {
            let book = self.book.load().retain(|h| names.contains_key(h));
            self.book.store(book);
        }
    }

    /// The names of `hosts` not known yet, added and marked as being asked, for a lookup before
    /// the table that uses them serves (names known already are left as they are). Until that
    /// table is followed they are kept, whatever the table followed now.
    pub fn add_new(&self, hosts: &BTreeSet<Arc<str>>, now: Instant) -> Vec<Arc<str>> {
        let mut names = self.names();
        let mut added = Vec::new();
        for h in hosts {
            if !names.contains_key(h) {
                let mut state = NameState::new(now);
                state.asking = true;
                state.pending_until = Some(now + PENDING_KEEP);
                names.insert(h.clone(), state);
                added.push(h.clone());
            }
        }
        added
    }

    /// The names due for a lookup, now marked as being asked.
    pub fn take_due(&self, now: Instant) -> Vec<Arc<str>> {
        let mut names = self.names();
        (names.iter_mut())
            .filter(|(_, s)| !s.asking && s.next_due <= now)
            .map(|(h, s)| {
                s.asking = true;
                h.clone()
            })
            .collect()
    }

    /// A lookup that did not finish (the start's wait ran out): due again at once.
    pub fn unanswered(&self, host: &str, now: Instant) {
        if let Some(s) = self.names().get_mut(host) {
            s.asking = false;
            s.next_due = now;
        }
    }

    /// Records a lookup's result; a change of the addresses is written to the book.
    pub fn record(&self, host: &Arc<str>, result: Result<Answer, String>, at: Times) -> Recorded {
        let mut names = self.names();
        let Some(state) = names.get_mut(host) else {
            return Recorded::Forgotten;
        };
        let recorded = state.record(result, at, self.interval);
        if let Recorded::Changed { .. } = recorded {
            let book = self.book.load().with(host, state.addrs.clone());
            self.book.store(book);
        }
        recorded
    }

    pub fn get(&self, host: &str) -> Option<NameView> {
        let names = self.names();
        let s = names.get(host)?;
        Some(NameView {
            addrs: s.addrs.clone(),
            resolved_at: s.resolved_at,
            last_error: s.last_error.clone(),
            failures: s.log.failures(),
            removed: s.removed.clone(),
        })
    }

    /// Every name's addresses, as an upgrade hands them over.
    pub fn export(&self) -> Vec<(String, Vec<IpAddr>)> {
        (self.names().iter())
            .filter(|(_, s)| !s.addrs.is_empty())
            .map(|(h, s)| (h.to_string(), s.addrs.to_vec()))
            .collect()
    }

    /// Takes handed-over addresses for the names followed that have none (their first lookup
    /// in this process did not answer): they serve, as an answer would, until the next lookup
    /// answers. The names this process resolved itself keep their own. Returns the names taken.
    pub fn adopt(&self, handed: &[(String, Vec<IpAddr>)]) -> Vec<String> {
        let mut taken = Vec::new();
        for (host, addrs) in handed {
            let host: Arc<str> = Arc::from(host.as_str());
            let empty = self.get(&host).is_some_and(|v| v.addrs.is_empty());
            if empty && !addrs.is_empty() {
                let answer = Answer {
                    addrs: addrs.clone(),
                    ttl: Duration::ZERO,
                };
                self.record(&host, Ok(answer), Times::now());
                taken.push(host.to_string());
            }
        }
        taken
    }

    /// `/status`'s `dns`: how many names, how many have addresses, and the ones whose last
    /// lookup failed.
    pub fn status(&self) -> Value {
        let names = self.names();
        let failing: Vec<Value> = (names.iter())
            .filter_map(|(h, s)| {
                let (error, at) = s.last_error.as_ref()?;
                Some(json!({
                    "name": h.as_ref(),
                    "error": error,
                    "at": rfc3339(*at),
                    "failures": s.log.failures(),
                    "addresses": s.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }))
            })
            .collect();
        json!({
            "names": names.len(),
            "resolved": names.values().filter(|s| !s.addrs.is_empty()).count(),
            "failing": failing,
        })
    }
}

/// A wall-clock time as `/upstreams` and `/status` show times.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The log line of a change.
pub fn describe_change(host: &str, groups: &str, change: &AddressChange, now: &[IpAddr]) -> String {
    format!(
        "DNS name {host} (upstream group {groups}): added {}, removed {}; now {}",
        list(&change.added),
        list(&change.removed),
        list(now)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(5);

    fn ips(s: &[&str]) -> Vec<IpAddr> {
        s.iter().map(|a| a.parse().expect("ip")).collect()
    }

    fn answer(s: &[&str]) -> Result<Answer, String> {
        Ok(Answer {
            addrs: ips(s),
            ttl: Duration::ZERO,
        })
    }

    fn host(h: &str) -> Arc<str> {
        h.into()
    }

    fn hosts(h: &[&str]) -> BTreeSet<Arc<str>> {
        h.iter().map(|h| host(h)).collect()
    }

    #[test]
    fn answers_fill_the_book_and_changes_are_told() {
        let t = Times::now();
        let n = DnsNames::new(INTERVAL);
        n.follow(&hosts(&["a.internal"]), t.now);
        assert_eq!(n.take_due(t.now), [host("a.internal")]);
        assert!(n.take_due(t.now).is_empty(), "one lookup at a time");
        let a = host("a.internal");
        let first = n.record(&a, answer(&["10.0.0.1", "10.0.0.2"]), t);
        assert_eq!(
            first,
            Recorded::Changed {
                change: AddressChange {
                    added: ips(&["10.0.0.1", "10.0.0.2"]),
                    removed: vec![]
                },
                first: true,
                recovered: 0
            }
        );
        assert_eq!(
            n.book().load().get("a.internal").map(|a| a.to_vec()),
            Some(ips(&["10.0.0.1", "10.0.0.2"]))
        );
        let book = n.book().load_full();
        assert!(
            n.take_due(t.now + INTERVAL / 2).is_empty(),
            "not before the interval"
        );
        assert_eq!(n.take_due(t.now + INTERVAL).len(), 1);
        assert_eq!(
            n.record(&a, answer(&["10.0.0.2", "10.0.0.1"]), t),
            Recorded::Same { recovered: 0 }
        );
        assert!(
            Arc::ptr_eq(&book, &n.book().load_full()),
            "the same addresses leave the book as it was"
        );
        let changed = n.record(&a, answer(&["10.0.0.2", "10.0.0.3"]), t);
        assert_eq!(
            changed,
            Recorded::Changed {
                change: AddressChange {
                    added: ips(&["10.0.0.3"]),
                    removed: ips(&["10.0.0.1"])
                },
                first: false,
                recovered: 0
            }
        );
        assert_eq!(
            n.get("a.internal").expect("name").removed,
            ips(&["10.0.0.1"])
        );
    }

    #[test]
    fn a_failure_keeps_the_last_addresses_and_is_shown() {
        let t = Times::now();
        let n = DnsNames::new(INTERVAL);
        let a = host("a.internal");
        n.follow(&hosts(&["a.internal"]), t.now);
        n.record(&a, answer(&["10.0.0.1"]), t);
        let book = n.book().load_full();
        let failed = n.record(&a, Err("the nameserver answered SERVFAIL".into()), t);
        assert_eq!(
            failed,
            Recorded::Failed {
                log: Some(LogLine {
                    in_a_row: 1,
                    unlogged: 0
                }),
                error: "the nameserver answered SERVFAIL".into()
            }
        );
        assert!(Arc::ptr_eq(&book, &n.book().load_full()), "addresses kept");
        let v = n.get("a.internal").expect("name");
        assert_eq!(v.addrs.to_vec(), ips(&["10.0.0.1"]));
        assert_eq!(v.failures, 1);
        assert_eq!(
            v.last_error.map(|(e, _)| e).as_deref(),
            Some("the nameserver answered SERVFAIL")
        );
        let status = n.status();
        assert_eq!(status["failing"][0]["name"], "a.internal");
        assert_eq!(status["resolved"], 1);
        // The second failure within the minute: counted, not logged.
        assert!(matches!(
            n.record(&a, Err("x".into()), t),
            Recorded::Failed { log: None, .. }
        ));
        assert_eq!(
            n.record(&a, answer(&["10.0.0.1"]), t),
            Recorded::Same { recovered: 2 }
        );
        assert_eq!(n.get("a.internal").expect("name").last_error, None);
        // An answer with an empty list never comes from the resolver; a name not answered
        // yet has no addresses and no entry in the book.
        n.follow(&hosts(&["a.internal", "b.internal"]), t.now);
        assert_eq!(n.book().load().get("b.internal"), None);
    }

    #[test]
    fn a_name_added_for_a_table_about_to_serve_outlives_the_table_followed_now() {
        let t = Times::now();
        let n = DnsNames::new(INTERVAL);
        let (a, b) = (host("a.internal"), host("b.internal"));
        n.follow(&hosts(&["a.internal"]), t.now);
        n.take_due(t.now);
        n.record(&a, answer(&["10.0.0.1"]), t);
        // The candidate table uses a and b: only b is new, and it is being asked.
        assert_eq!(
            n.add_new(&hosts(&["a.internal", "b.internal"]), t.now),
            std::slice::from_ref(&b)
        );
        assert!(
            n.take_due(t.now).is_empty(),
            "b is asked once, a is not due"
        );
        // The service follows the running table (without b) meanwhile: b stays.
        n.follow(&hosts(&["a.internal"]), t.now);
        assert!(matches!(
            n.record(&b, answer(&["10.0.0.2"]), t),
            Recorded::Changed { first: true, .. }
        ));
        n.follow(&hosts(&["a.internal"]), t.now);
        assert_eq!(
            n.book().load().len(),
            2,
            "b's addresses are ready for its table"
        );
        // Its table serves, then a later one drops it: forgotten like any name.
        n.follow(&hosts(&["a.internal", "b.internal"]), t.now);
        assert!(n.take_due(t.now).is_empty(), "answered just now: not due");
        n.follow(&hosts(&["a.internal"]), t.now);
        assert!(n.get("b.internal").is_none());
        // One whose table never came is dropped once its keep runs out.
        assert_eq!(n.add_new(&hosts(&["c.internal"]), t.now).len(), 1);
        n.follow(&hosts(&["a.internal"]), t.now + PENDING_KEEP);
        assert!(n.get("c.internal").is_none());
    }

    #[test]
    fn a_name_no_longer_used_is_forgotten_and_one_kept_keeps_its_state() {
        let t = Times::now();
        let n = DnsNames::new(INTERVAL);
        let (a, b) = (host("a.internal"), host("b.internal"));
        n.follow(&hosts(&["a.internal", "b.internal"]), t.now);
        n.take_due(t.now);
        n.record(&a, answer(&["10.0.0.1"]), t);
        n.record(&b, answer(&["10.0.0.2"]), t);
        // The same names again (a reload): nothing is due, nothing changes.
        let book = n.book().load_full();
        n.follow(&hosts(&["a.internal", "b.internal"]), t.now);
        assert!(n.take_due(t.now).is_empty());
        assert!(Arc::ptr_eq(&book, &n.book().load_full()));
        n.follow(&hosts(&["a.internal"]), t.now);
        assert_eq!(n.book().load().len(), 1);
        assert_eq!(n.record(&b, answer(&["10.0.0.9"]), t), Recorded::Forgotten);
        assert_eq!(n.book().load().get("b.internal"), None);
        assert!(n.get("b.internal").is_none());
    }
}
