//! Weights set over a routing table by running rollouts. A rollout's step is data (route →
//! split weights) handed to compile with the decoded model, whatever the table's source (the
//! routes file, an etcd revision, a kept version): the text stays as written, and a version's
//! record is the text plus these.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Route name → the split weights compile uses instead of the written ones (one per entry, in
/// the split's order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Overrides(BTreeMap<String, Vec<u32>>);

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The weights set on `route`, if any.
    pub fn get(&self, route: &str) -> Option<&[u32]> {
        self.0.get(route).map(Vec::as_slice)
    }

    pub fn set(&mut self, route: &str, weights: Vec<u32>) {
        self.0.insert(route.to_string(), weights);
    }

    /// Sets `weights` on `route`, or nothing when they are the `written` ones: a table with
    /// every rollout at its file's weights is named by its text alone.
    pub fn set_over(&mut self, route: &str, weights: Vec<u32>, written: &[u32]) {
        match weights == written {
            true => self.0.remove(route),
            false => self.0.insert(route.to_string(), weights),
        };
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u32])> {
        self.0.iter().map(|(r, w)| (r.as_str(), w.as_slice()))
    }

    /// The sha256 of a version: of its text alone when nothing is set over it (so a version is
    /// named by the same hash as the file it was read from), else of the text and these
    /// together, so that a step on an unchanged file is never taken for "identical content".
    pub fn sha256_with(&self, text: &[u8]) -> String {
        if self.is_empty() {
            return crate::stamp::sha256_hex(text);
        }
        let mut bytes = Vec::with_capacity(text.len() + 64);
        bytes.extend_from_slice(text);
        bytes.extend_from_slice(b"\0dyegate overrides\0");
        for (route, weights) in &self.0 {
            bytes.extend_from_slice(route.as_bytes());
            bytes.push(0);
            for w in weights {
                bytes.extend_from_slice(&w.to_be_bytes());
            }
            bytes.push(0);
        }
        crate::stamp::sha256_hex(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_texts_without_overrides_and_tells_steps_apart() {
        let text = b"routes: []\n";
        let none = Overrides::default();
        assert_eq!(none.sha256_with(text), crate::stamp::sha256_hex(text));
        let mut a = Overrides::default();
        a.set("shop", vec![95, 5]);
        let mut b = Overrides::default();
        b.set("shop", vec![80, 20]);
        assert_ne!(a.sha256_with(text), none.sha256_with(text));
        assert_ne!(a.sha256_with(text), b.sha256_with(text));
        assert_eq!(a.sha256_with(text), a.clone().sha256_with(text));
        // Route and weights are delimited: no two different sets hash alike by concatenation.
        let mut c = Overrides::default();
        c.set("shop9", vec![5]);
        let mut d = Overrides::default();
        d.set("shop", vec![9, 5]);
        assert_ne!(c.sha256_with(text), d.sha256_with(text));
        assert_eq!(
            serde_json::to_string(&a).unwrap_or_default(),
            r#"{"shop":[95,5]}"#
        );
    }
}
