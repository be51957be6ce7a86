//! Where a fleet's rollouts live in etcd, next to its table (see `source/layout.rs`):
//!
//! ```text
//! PREFIX/rollouts/.driver                  -> the driving gateway's id, bound to its lease
//! PREFIX/rollouts/.gateways/GATEWAY        -> {"gateway": ...}, bound to that gateway's lease
//! PREFIX/rollouts/ROUTE/state              -> the rollout's state (JSON), compare-and-swapped
//! PREFIX/rollouts/ROUTE/step               -> the weights of its step (JSON), written with the
//!                                             state only when they change: its revision is the
//!                                             version every gateway serves them as
//! PREFIX/rollouts/ROUTE/figures/GATEWAY    -> a gateway's window (JSON), bound to its lease
//! ```
//!
//! Route names and gateway ids are percent-encoded (everything but `A-Z a-z 0-9 - _ ~`), so a
//! name never holds a `/` and never starts with the `.` of the fleet's own keys.

/// Under the prefix: every key of the fleet's rollouts.
pub const ROLLOUTS: &str = "rollouts/";
const DRIVER: &str = ".driver";
const GATEWAYS: &str = ".gateways/";
const STATE: &str = "state";
const STEP: &str = "step";
const FIGURES: &str = "figures/";

/// A key under `PREFIX/rollouts/`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Driver,
    Gateway(String),
    State(String),
    Step(String),
    Figures { route: String, gateway: String },
}

/// `name` with every byte but `A-Z a-z 0-9 - _ ~` as `%XX`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The name [`encode`] made `segment` from; `None` for a segment it never makes.
pub fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = segment.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => {
                out.push(bytes[i]);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// `PREFIX/rollouts/`.
pub fn dir(prefix: &str) -> String {
    format!("{prefix}{ROLLOUTS}")
}

pub fn driver(prefix: &str) -> String {
    format!("{prefix}{ROLLOUTS}{DRIVER}")
}

pub fn gateway(prefix: &str, id: &str) -> String {
    format!("{prefix}{ROLLOUTS}{GATEWAYS}{}", encode(id))
}

/// `PREFIX/rollouts/ROUTE/`: every key of one route's rollout.
pub fn route_dir(prefix: &str, route: &str) -> String {
    format!("{prefix}{ROLLOUTS}{}/", encode(route))
}

pub fn state(prefix: &str, route: &str) -> String {
    format!("{}{STATE}", route_dir(prefix, route))
}

pub fn step(prefix: &str, route: &str) -> String {
    format!("{}{STEP}", route_dir(prefix, route))
}

pub fn figures(prefix: &str, route: &str, gateway: &str) -> String {
    format!("{}{FIGURES}{}", route_dir(prefix, route), encode(gateway))
}

/// What `key` is, when it is one of the fleet's rollout keys.
pub fn parse(prefix: &str, key: &str) -> Option<Key> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(ROLLOUTS)?;
    if rest == DRIVER {
        return Some(Key::Driver);
    }
    if let Some(id) = rest.strip_prefix(GATEWAYS) {
        return decode(id).map(Key::Gateway);
    }
    let (route, what) = rest.split_once('/')?;
    let route = decode(route)?;
    match what {
        STATE => Some(Key::State(route)),
        STEP => Some(Key::Step(route)),
        _ => {
            let gateway = decode(what.strip_prefix(FIGURES)?)?;
            Some(Key::Figures { route, gateway })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_whatever_the_names() {
        let p = "/dyegate/prod/";
        for route in ["shop", "a/b", ".driver", "state", "é x", "%41"] {
            assert_eq!(parse(p, &state(p, route)), Some(Key::State(route.into())));
            assert_eq!(parse(p, &step(p, route)), Some(Key::Step(route.into())));
            let f = figures(p, route, "web1-10.0.0.7:8080");
            assert_eq!(
                parse(p, &f),
                Some(Key::Figures {
                    route: route.into(),
                    gateway: "web1-10.0.0.7:8080".into()
                })
            );
        }
        assert_eq!(step(p, "a/b"), "/dyegate/prod/rollouts/a%2Fb/step");
        assert_eq!(parse(p, &driver(p)), Some(Key::Driver));
        assert_eq!(
            parse(p, &gateway(p, "state")),
            Some(Key::Gateway("state".into()))
        );
        assert_eq!(parse(p, "/dyegate/prod/current"), None);
        assert_eq!(parse(p, "/dyegate/prod/rollouts/shop/other"), None);
        assert_eq!(parse(p, "/dyegate/prod/rollouts/sh%zz/state"), None);
    }
}
