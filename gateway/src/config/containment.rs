//! The routes.yaml and gateway.yaml sections that contain a failing upstream, as serde structs
//! mirroring the file: `routes[i].timeouts`, `routes[i].retries`, `upstreams.NAME.health`,
//! `upstreams.NAME.outlier` and gateway.yaml's `debug`. Checked by `compile_containment.rs`.

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A duration in milliseconds: a whole number from 1 to [`MAX_MILLIS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

/// Longest duration accepted anywhere (one day).
pub const MAX_MILLIS: u64 = 86_400_000;

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a whole number of milliseconds from 1 to {MAX_MILLIS}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                if (1..=MAX_MILLIS).contains(&v) {
                    Ok(Millis(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Unsigned(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number in `1..=MAX` (counts: attempts, thresholds, in-flight limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count<const MAX: u64>(pub u64);

impl<'de, const MAX: u64> Deserialize<'de> for Count<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: u64>;
        impl<const MAX: u64> Visitor<'_> for V<MAX> {
            type Value = Count<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a whole number from 1 to {MAX}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count<MAX>, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count<MAX>, E> {
                if (1..=MAX).contains(&v) {
                    Ok(Count(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Unsigned(v), &self))
                }
            }
        }
        d.deserialize_any(V::<MAX>)
    }
}

/// A share in percent, a whole number from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(pub u8);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number of percent from 0 to 100")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
                match u8::try_from(v) {
                    Ok(p) if p <= 100 => Ok(Percent(p)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `routes[i].timeouts`: how long the gateway waits on the upstream.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// Connect (TCP); absent = gateway.yaml's `connect_timeout_ms`.
    #[serde(default)]
    pub connect_ms: Option<Millis>,
    /// Each read while waiting on the upstream (response header or body) [15000].
    #[serde(default)]
    pub read_ms: Option<Millis>,
    /// Each write of the request to the upstream [15000].
    #[serde(default)]
    pub write_ms: Option<Millis>,
    /// The whole request, retries included; absent = none.
    #[serde(default)]
    pub total_ms: Option<Millis>,
}
