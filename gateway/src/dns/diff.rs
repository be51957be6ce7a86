//! What changed between two answers for a name: the addresses added and removed. Pure.

use std::net::IpAddr;

/// The difference between the addresses a name had and the ones it has now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressChange {
    pub added: Vec<IpAddr>,
    pub removed: Vec<IpAddr>,
}

impl AddressChange {
    /// `old` and `new`, each sorted and without repeats.
    pub fn between(old: &[IpAddr], new: &[IpAddr]) -> AddressChange {
        let (mut i, mut j) = (0, 0);
        let mut change = AddressChange::default();
        while i < old.len() || j < new.len() {
            match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) if a == b => {
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a < b => {
                    change.removed.push(*a);
                    i += 1;
                }
                (Some(_), Some(b)) | (None, Some(b)) => {
                    change.added.push(*b);
                    j += 1;
                }
                (Some(a), None) => {
                    change.removed.push(*a);
                    i += 1;
                }
                (None, None) => break,
            }
        }
        change
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// Addresses as a log line or a message shows them: `10.0.0.7, 10.0.0.8`, or `none`.
pub fn list(addrs: &[IpAddr]) -> String {
    if addrs.is_empty() {
        return "none".into();
    }
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An answer's addresses in the one order everything compares them in: sorted, no repeats.
pub fn normalized(mut addrs: Vec<IpAddr>) -> Vec<IpAddr> {
    addrs.sort();
    addrs.dedup();
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(s: &[&str]) -> Vec<IpAddr> {
        s.iter().map(|a| a.parse().expect("ip")).collect()
    }

    #[test]
    fn added_and_removed() {
        let c = AddressChange::between(
            &ips(&["10.0.0.1", "10.0.0.2", "10.0.0.4"]),
            &ips(&["10.0.0.2", "10.0.0.3", "10.0.0.5", "::1"]),
        );
        assert_eq!(c.added, ips(&["10.0.0.3", "10.0.0.5", "::1"]));
        assert_eq!(c.removed, ips(&["10.0.0.1", "10.0.0.4"]));
        assert!(AddressChange::between(&ips(&["10.0.0.1"]), &ips(&["10.0.0.1"])).is_empty());
        let first = AddressChange::between(&[], &ips(&["10.0.0.1"]));
        assert_eq!((first.added.len(), first.removed.len()), (1, 0));
        let gone = AddressChange::between(&ips(&["10.0.0.1"]), &[]);
        assert_eq!((gone.added.len(), gone.removed.len()), (0, 1));
    }

    #[test]
    fn answers_are_sorted_and_deduplicated() {
        assert_eq!(
            normalized(ips(&["10.0.0.2", "10.0.0.1", "10.0.0.2"])),
            ips(&["10.0.0.1", "10.0.0.2"])
        );
        assert_eq!(list(&ips(&["10.0.0.1", "::1"])), "10.0.0.1, ::1");
        assert_eq!(list(&[]), "none");
    }
}
