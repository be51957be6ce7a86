//! Weights set over a routing table by running rollouts. A rollout's step is data (route →
//! split weights) handed to compile with the decoded model, whatever the table's source (the
//! routes file, an etcd revision, a kept version): the text stays as written, and a version's
//! record is the text plus these.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Route name → what compile uses instead of the written text: the split weights (one per
/// entry, in the split's order) and a shadow stage's mirror.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Overrides(BTreeMap<String, RouteOverride>);

/// What is set over one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Repr", into = "Repr")]
pub struct RouteOverride {
    pub weights: Option<Vec<u32>>,
    pub shadow: Option<ShadowMirror>,
}

/// The mirror a rollout's shadow stage sets over its route: copies of the route's requests to
/// `group` at `share` (thousandths of a percent, as `routing::Mirror`). A `mirror` entry of the
/// route to that group keeps its other settings and takes this share; without one, compile adds
/// one with the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowMirror {
    pub group: String,
    pub share: u32,
}

/// As versions are kept: weights alone as the list they always were (so history written
/// before shadow stages reads the same), with a shadow mirror as a map.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Weights(Vec<u32>),
    Set {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Vec<u32>>,
        shadow: ShadowMirror,
    },
}

impl From<Repr> for RouteOverride {
    fn from(r: Repr) -> Self {
        match r {
            Repr::Weights(w) => RouteOverride {
                weights: Some(w),
                shadow: None,
            },
            Repr::Set { weights, shadow } => RouteOverride {
                weights,
                shadow: Some(shadow),
            },
        }
    }
}

impl From<RouteOverride> for Repr {
    fn from(o: RouteOverride) -> Self {
        match o.shadow {
            Some(shadow) => Repr::Set {
                weights: o.weights,
                shadow,
            },
            None => Repr::Weights(o.weights.unwrap_or_default()),
        }
    }
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The weights set on `route`, if any.
    pub fn get(&self, route: &str) -> Option<&[u32]> {
        self.0.get(route)?.weights.as_deref()
    }

    /// The shadow stage's mirror set on `route`, if any.
    pub fn shadow(&self, route: &str) -> Option<&ShadowMirror> {
        self.0.get(route)?.shadow.as_ref()
    }

    pub fn set(&mut self, route: &str, weights: Vec<u32>) {
        self.0.entry(route.to_string()).or_default().weights = Some(weights);
    }

    /// Sets `weights` on `route`, or nothing when they are the `written` ones: a table with
    /// every rollout at its file's weights is named by its text alone.
    pub fn set_over(&mut self, route: &str, weights: Vec<u32>, written: &[u32]) {
        let set = (weights != written).then_some(weights);
        self.change(route, |o| o.weights = set);
    }

    /// Sets (or with `None` takes away) the shadow stage's mirror on `route`.
    pub fn set_shadow(&mut self, route: &str, shadow: Option<ShadowMirror>) {
        self.change(route, |o| o.shadow = shadow);
    }

    fn change(&mut self, route: &str, f: impl FnOnce(&mut RouteOverride)) {
        let o = self.0.entry(route.to_string()).or_default();
        f(o);
        if o.weights.is_none() && o.shadow.is_none() {
            self.0.remove(route);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &RouteOverride)> {
        self.0.iter().map(|(r, o)| (r.as_str(), o))
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
        for (route, o) in &self.0 {
            bytes.extend_from_slice(route.as_bytes());
            bytes.push(0);
            for w in o.weights.iter().flatten() {
                bytes.extend_from_slice(&w.to_be_bytes());
            }
            bytes.push(0);
            if let Some(s) = &o.shadow {
                // After the weights' delimiter: a set without a shadow hashes as it always did.
                bytes.extend_from_slice(b"shadow\0");
                bytes.extend_from_slice(s.group.as_bytes());
                bytes.push(0);
                bytes.extend_from_slice(&s.share.to_be_bytes());
                bytes.push(0);
            }
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

    #[test]
    fn a_shadow_mirror_is_kept_beside_the_weights_and_reads_back() {
        let text = b"routes: []\n";
        let mut a = Overrides::default();
        a.set_over("shop", vec![100, 0], &[100, 0]);
        assert!(a.is_empty());
        let shadow = ShadowMirror {
            group: "canary".into(),
            share: 100_000,
        };
        a.set_shadow("shop", Some(shadow.clone()));
        assert_eq!(a.get("shop"), None);
        assert_eq!(a.shadow("shop"), Some(&shadow));
        let json = serde_json::to_string(&a).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"shop":{"shadow":{"group":"canary","share":100000}}}"#
        );
        let back: Overrides = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, a);
        let old: Overrides = serde_json::from_str(r#"{"shop":[95,5]}"#).expect("old form");
        assert_eq!(old.get("shop"), Some(&[95, 5][..]));
        let mut b = a.clone();
        b.set_over("shop", vec![95, 5], &[100, 0]);
        assert_ne!(a.sha256_with(text), b.sha256_with(text));
        assert_ne!(old.sha256_with(text), b.sha256_with(text));
        // Weights kept, shadow taken away: what the weights alone were.
        b.set_shadow("shop", None);
        assert_eq!(b, old);
        assert_eq!(b.sha256_with(text), old.sha256_with(text));
        b.set_over("shop", vec![100, 0], &[100, 0]);
        assert!(b.is_empty());
    }
}
