//! Numeric bounds of config fields, and the one way a value outside them is reported:
//! `found X, expected WHAT from MIN to MAX` (`WHAT >= MIN` with no upper bound, `WHAT > MIN` or
//! `WHAT > MIN and <= MAX` when MIN itself is excluded).
//!
//! Every bound is declared once, as a [`Bound`]. A field whose type is a bounded newtype
//! ([`Ranged`], [`Millis`], [`Percent`], ... all through [`Bounded`]) is checked while it is
//! decoded, and its JSON schema takes the range from the same bound. A field kept a plain number
//! is checked with [`Bound::check`] during validation, with the same message: gateway.yaml's
//! (decoding stops at its first error, and every problem of the file is reported together) and
//! the rollout gates (which `crate::rollout` reads as plain numbers).

use super::error::Issue;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A kind of number a bound is over; `TOP` stands for "no upper bound".
pub trait Num: Copy + PartialOrd + fmt::Display {
    const TOP: Self;
}

impl Num for u64 {
    const TOP: u64 = u64::MAX;
}

impl Num for f64 {
    // Infinity and NaN are above every bound (NaN compares false), so never accepted.
    const TOP: f64 = f64::MAX;
}

/// The values a field accepts: `min..=max` (or `min < v <= max`), and what they are called.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound<N> {
    /// What the value is, as the message names it: `a whole number of milliseconds`.
    pub what: &'static str,
    pub min: N,
    /// [`Num::TOP`]: no upper bound.
    pub max: N,
    /// `min` itself is not accepted.
    pub min_excluded: bool,
}

impl Bound<u64> {
    /// A count, an index, a size without a unit.
    pub const fn whole(min: u64, max: u64) -> Self {
        Self::of("a whole number", min, max)
    }
    /// A whole number with no upper bound.
    pub const fn at_least(min: u64) -> Self {
        Self::whole(min, u64::MAX)
    }
    pub const fn millis(min: u64, max: u64) -> Self {
        Self::of("a whole number of milliseconds", min, max)
    }
    pub const fn bytes(min: u64, max: u64) -> Self {
        Self::of("a whole number of bytes", min, max)
    }
    pub const fn percent(min: u64, max: u64) -> Self {
        Self::of("a whole number of percent", min, max)
    }
    /// A whole number of something else (`a whole number of requests per second`).
    pub const fn of(what: &'static str, min: u64, max: u64) -> Self {
        Bound {
            what,
            min,
            max,
            min_excluded: false,
        }
    }
}

impl Bound<f64> {
    /// A number (fractions allowed) in `min..=max`.
    pub const fn number(min: f64, max: f64) -> Self {
        Bound {
            what: "a number",
            min,
            max,
            min_excluded: false,
        }
    }
    /// A number above `min` (not `min` itself), at most `max` ([`Num::TOP`]: no upper bound).
    pub const fn above(min: f64, max: f64) -> Self {
        Bound {
            what: "a number",
            min,
            max,
            min_excluded: true,
        }
    }
}

impl<N: Num> Bound<N> {
    pub fn contains(&self, v: N) -> bool {
        let low = if self.min_excluded {
            v > self.min
        } else {
            v >= self.min
        };
        low && v <= self.max
    }

    /// What the field accepts, as the part of the message after `expected`.
    pub fn expected(&self) -> String {
        let Bound { what, min, max, .. } = self;
        match (self.min_excluded, *max < N::TOP) {
            (false, true) => format!("{what} from {min} to {max}"),
            (false, false) => format!("{what} >= {min}"),
            (true, true) => format!("{what} > {min} and <= {max}"),
            (true, false) => format!("{what} > {min}"),
        }
    }

    /// The whole message for a value outside the bound.
    pub fn found(&self, v: impl fmt::Display) -> String {
        format!("found {v}, expected {}", self.expected())
    }

    /// Checks a plain field; an issue at `path` when `v` is outside. True when inside.
    pub fn check(&self, path: impl Into<String>, v: N, issues: &mut Vec<Issue>) -> bool {
        let inside = self.contains(v);
        if !inside {
            issues.push(Issue::new(path, self.found(v)));
        }
        inside
    }
}

impl Bound<u64> {
    /// The JSON schema of an integer within the bound.
    fn schema(&self) -> Schema {
        let mut s = json_schema!({ "type": "integer", "minimum": self.min });
        if self.max < u64::TOP {
            s.insert("maximum".into(), self.max.into());
        }
        let mut description = self.expected();
        if let Some(first) = description.get(..1) {
            description.replace_range(..1, &first.to_uppercase());
        }
        s.insert("description".into(), format!("{description}.").into());
        s
    }
}

/// A newtype over a whole number whose bound is in its type: decoded with that bound checked,
/// described in the JSON schema with it.
pub trait Bounded: Sized {
    const BOUND: Bound<u64>;
    /// Called only with a value inside [`Self::BOUND`].
    fn from_checked(v: u64) -> Self;
}

/// `Deserialize` of every [`Bounded`] type.
pub fn deserialize<'de, T: Bounded, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<T: Bounded> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(&T::BOUND.expected())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            if T::BOUND.contains(v) {
                Ok(T::from_checked(v))
            } else {
                Err(E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }
    }
    d.deserialize_any(V(PhantomData))
}

/// The JSON schema of every [`Bounded`] type.
pub fn schema<T: Bounded>() -> Schema {
    T::BOUND.schema()
}

/// `Deserialize` and `JsonSchema` of a [`Bounded`] type, named `$name` in the schema.
macro_rules! bounded {
    ($t:ty, $name:literal) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::config::range::deserialize(d)
            }
        }
        impl schemars::JsonSchema for $t {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $crate::config::range::schema::<Self>()
            }
        }
    };
}
pub(crate) use bounded;

/// A whole number in `MIN..=MAX` (attempts, thresholds, in-flight limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranged<const MIN: u64, const MAX: u64>(pub u64);

/// A count: a whole number in `1..=MAX`.
pub type Count<const MAX: u64> = Ranged<1, MAX>;

impl<const MIN: u64, const MAX: u64> Bounded for Ranged<MIN, MAX> {
    const BOUND: Bound<u64> = Bound::whole(MIN, MAX);
    fn from_checked(v: u64) -> Self {
        Ranged(v)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Ranged<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d)
    }
}

impl<const MIN: u64, const MAX: u64> JsonSchema for Ranged<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Ranged{MIN}_{MAX}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema::<Self>()
    }
}

/// Longest duration accepted anywhere (one day).
pub const MAX_MILLIS: u64 = 86_400_000;

/// A duration in milliseconds: a whole number from 1 to [`MAX_MILLIS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

impl Bounded for Millis {
    const BOUND: Bound<u64> = Bound::millis(1, MAX_MILLIS);
    fn from_checked(v: u64) -> Self {
        Millis(v)
    }
}
bounded!(Millis, "Millis");

/// `timeouts.read_ms`: a duration in milliseconds from 1 to [`MAX_MILLIS`], or 0 for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMillis(pub u64);

impl Bounded for ReadMillis {
    const BOUND: Bound<u64> = Bound::millis(0, MAX_MILLIS);
    fn from_checked(v: u64) -> Self {
        ReadMillis(v)
    }
}
bounded!(ReadMillis, "ReadMillis");

/// A share in percent, a whole number from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(pub u8);

impl Bounded for Percent {
    const BOUND: Bound<u64> = Bound::percent(0, 100);
    fn from_checked(v: u64) -> Self {
        Percent(v as u8)
    }
}
bounded!(Percent, "Percent");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_wording_for_every_kind_of_bound() {
        assert_eq!(
            Bound::whole(1, 64).found(0),
            "found 0, expected a whole number from 1 to 64"
        );
        assert_eq!(
            Bound::at_least(1).found(0),
            "found 0, expected a whole number >= 1"
        );
        assert_eq!(
            Bound::millis(100, 3_600_000).found(5),
            "found 5, expected a whole number of milliseconds from 100 to 3600000"
        );
        assert_eq!(
            Bound::bytes(1, u64::MAX).found(0),
            "found 0, expected a whole number of bytes >= 1"
        );
        assert_eq!(
            Bound::number(0.0, 1.0).found(1.5),
            "found 1.5, expected a number from 0 to 1"
        );
        assert_eq!(
            Bound::above(0.0, 100.0).found(0),
            "found 0, expected a number > 0 and <= 100"
        );
        assert_eq!(
            Bound::above(0.0, f64::MAX).found(-1),
            "found -1, expected a number > 0"
        );
    }

    #[test]
    fn bounds_are_inclusive_unless_the_minimum_is_excluded() {
        let b = Bound::whole(1, 64);
        assert!(!b.contains(0) && b.contains(1) && b.contains(64) && !b.contains(65));
        assert!(Bound::at_least(1).contains(u64::MAX));
        let p = Bound::above(0.0, 100.0);
        assert!(!p.contains(0.0) && p.contains(0.001) && p.contains(100.0));
        let r = Bound::above(0.0, f64::MAX);
        assert!(r.contains(1e300) && !r.contains(f64::INFINITY) && !r.contains(f64::NAN));
        let f = Bound::number(0.0, 1.0);
        assert!(f.contains(0.0) && f.contains(1.0) && !f.contains(f64::NAN));
    }

    #[test]
    fn the_schema_takes_its_range_from_the_bound() {
        assert_eq!(
            serde_json::to_value(schema::<Millis>()).expect("json"),
            serde_json::json!({
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_MILLIS,
                "description": "A whole number of milliseconds from 1 to 86400000.",
            })
        );
    }
}
