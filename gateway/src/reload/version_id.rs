//! The name of a kept version: its number and, for a change made on one gateway of a fleet
//! (a local rollback), a local sequence under the fleet's number.
//!
//! A gateway that follows etcd numbers its tables by the fleet's revision, the same number on
//! every gateway. A change made on this gateway alone takes no fleet number: it is the fleet
//! version it was made on plus a local sequence, `41.1`, `41.2`, ... Written as a JSON number
//! when there is no local part (`41`, as before) and as a string otherwise (`"41.1"`), so the
//! on-disk formats and every consumer of a plain number keep working.

use crate::routing::ActiveTable;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VersionId {
    pub version: u64,
    /// 0: the version itself; K > 0: the K-th local change made on `version`.
    pub local: u32,
}

impl VersionId {
    pub fn new(version: u64) -> VersionId {
        VersionId { version, local: 0 }
    }

    pub fn local(version: u64, local: u32) -> VersionId {
        VersionId { version, local }
    }

    pub fn is_local(&self) -> bool {
        self.local > 0
    }
}

/// The name of the table requests see.
pub fn of<M>(active: &ActiveTable<M>) -> VersionId {
    VersionId::local(active.version, active.local)
}

impl From<u64> for VersionId {
    fn from(version: u64) -> Self {
        VersionId::new(version)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.local {
            0 => write!(f, "{}", self.version),
            k => write!(f, "{}.{k}", self.version),
        }
    }
}

/// `41` or `41.1` (a local change); anything else is an error naming what was found.
impl FromStr for VersionId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("found {s:?}, expected a version: N or N.K (a local change), N and K numbers")
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        match s.split_once('.') {
            None if digits(s) => s.parse().map(VersionId::new).map_err(|_| bad()),
            Some((v, k)) if digits(v) && digits(k) => {
                let version = v.parse().map_err(|_| bad())?;
                let local: u32 = k.parse().map_err(|_| bad())?;
                Ok(VersionId { version, local })
            }
            _ => Err(bad()),
        }
    }
}

impl Serialize for VersionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.local {
            0 => s.serialize_u64(self.version),
            _ => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for VersionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = VersionId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a version number, or \"N.K\" for a local change")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<VersionId, E> {
                Ok(VersionId::new(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<VersionId, E> {
                u64::try_from(v)
                    .map(VersionId::new)
                    .map_err(|_| E::custom(format!("found {v}, expected a version number >= 0")))
            }
            /// Only the written form of a local change: a version without one is a number.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VersionId, E> {
                match v.parse::<VersionId>().map_err(E::custom)? {
                    id if id.is_local() => Ok(id),
                    _ => Err(E::custom(format!(
                        "found {v:?}, expected a number (a string only for a local change, \"N.K\")"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_a_number_without_a_local_part_and_as_a_string_with_one() {
        let j = |v: VersionId| serde_json::to_string(&v).unwrap_or_default();
        assert_eq!(j(VersionId::new(41)), "41");
        assert_eq!(j(VersionId::local(41, 2)), r#""41.2""#);
        for text in ["41", r#""41.2""#] {
            let v: VersionId = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(j(v).trim_matches('"'), text.trim_matches('"'));
        }
        assert!(serde_json::from_str::<VersionId>("-1").is_err());
        assert!(serde_json::from_str::<VersionId>(r#""7""#).is_err());
        assert!(serde_json::from_str::<VersionId>("1.5").is_err());
    }

    #[test]
    fn parsed_from_n_or_n_dot_k_only() {
        assert_eq!("41".parse(), Ok(VersionId::new(41)));
        assert_eq!("41.3".parse(), Ok(VersionId::local(41, 3)));
        for bad in ["", "x", "41.", ".1", "41.1.1", "-1", "41.-1", "4 1"] {
            let err = bad.parse::<VersionId>().expect_err(bad);
            assert!(err.contains("N.K"), "{err}");
        }
        assert_eq!(VersionId::local(41, 3).to_string(), "41.3");
        assert!(VersionId::new(41) < VersionId::local(41, 1));
        assert!(VersionId::local(41, 9) < VersionId::new(42));
    }
}
