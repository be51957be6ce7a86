//! Serde structs that mirror `routes.yaml` field for field. Nothing here is checked beyond its
//! YAML type and the bounds of its number types: [`super::validate`] and [`super::compile`] do
//! that.

use super::containment::{HealthConfig, OutlierConfig, RetriesConfig, TimeoutsConfig};
use super::upstream_transport::{UpstreamProtocol, UpstreamTlsConfig};
use crate::config::entries::Entries;
use crate::config::range::Bound;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

/// `routes.yaml`. The top level is decoded entry by entry (see `load.rs`) so that every broken
/// upstream and route is reported, not only the first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutesConfig {
    /// In file order; `None` where the entry failed to decode (its name still counts as defined).
    /// Entries are shared with the next version when their text is unchanged (see
    /// `incremental.rs`).
    pub upstreams: Vec<(String, Option<Arc<UpstreamConfig>>)>,
    /// In file order; `None` where the route failed to decode.
    pub routes: Vec<Option<Arc<RouteConfig>>>,
    /// Field paths that failed to decode and were replaced by placeholders (see `load.rs`);
    /// validation issues on them, or on their parents, would only repeat the decoding error.
    pub failed: Vec<String>,
}

impl RoutesConfig {
    /// Whether an issue at `path` follows from a field that failed to decode.
    pub fn is_consequence(&self, path: &str) -> bool {
        self.failed
            .iter()
            .any(|f| path.starts_with(f.as_str()) || f.starts_with(path))
    }
}

/// routes.yaml decoded in one go (the fast path for valid files, see `config::routes_from_text`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    /// Upstream groups: named sets of interchangeable targets.
    #[serde(default)]
    pub upstreams: Entries<UpstreamConfig>,
    /// Routes, tried in file order: the first whose `match` holds wins; no match answers 404.
    pub routes: Vec<RouteConfig>,
}

/// `upstreams.NAME`: a group of interchangeable targets.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Targets, picked by weighted round-robin.
    pub targets: Vec<TargetConfig>,
    /// Active health checks; absent = none.
    #[serde(default)]
    pub health: Option<HealthConfig>,
    /// Passive ejection of failing targets; absent = none.
    #[serde(default)]
    pub outlier: Option<OutlierConfig>,
    /// Circuit breaker: requests in flight to the group past which new ones get 503.
    #[serde(default)]
    pub max_in_flight: Option<crate::config::range::Count<1_000_000>>,
    /// `h1` [default], `h2` (TLS + ALPN) or `h2c` (cleartext, prior knowledge).
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// TLS to the targets (with `h1` or `h2`); absent = cleartext for `h1`, defaults for `h2`.
    #[serde(default)]
    pub tls: Option<UpstreamTlsConfig>,
}

/// A target: `"IP:PORT"` or `"NAME:PORT"` (a DNS name: one target per address it resolves to),
/// or `{ addr: "IP:PORT", weight: N }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    pub addr: String,
    pub weight: Weight,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFields {
    addr: String,
    #[serde(default = "Weight::one")]
    weight: Weight,
}

impl<'de> Deserialize<'de> for TargetConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TargetConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an address \"IP:PORT\" or \"NAME:PORT\", or { addr: \"IP:PORT\", weight: N }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TargetConfig, E> {
                Ok(TargetConfig {
                    addr: s.to_string(),
                    weight: Weight(1),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TargetConfig, A::Error> {
                let t = TargetFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TargetConfig {
                    addr: t.addr,
                    weight: t.weight,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A weight: a whole number >= 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weight(pub u32);

/// Largest weight accepted (keeps the sum of any split far from overflow).
pub use crate::routing::MAX_WEIGHT;
/// A weight's bound. A value that is not a whole number >= 0 is told so (`found -5, expected a
/// whole number >= 0`, the example of every error in the docs); one past [`MAX_WEIGHT`] is told
/// the whole range.
pub const WEIGHT_BOUND: Bound<u64> = Bound::whole(0, MAX_WEIGHT as u64);

impl Weight {
    fn one() -> Weight {
        Weight(1)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Weight;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&Bound::at_least(WEIGHT_BOUND.min).expected())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Weight, E> {
                if v < 0 {
                    return Err(E::invalid_value(de::Unexpected::Signed(v), &self));
                }
                self.visit_u64(v as u64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Weight, E> {
                match u32::try_from(v) {
                    Ok(w) if WEIGHT_BOUND.contains(v) => Ok(Weight(w)),
                    _ => Err(E::custom(WEIGHT_BOUND.found(v))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `routes[i]`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique; used in logs and metrics.
    pub name: String,
    /// Which requests the route takes; every field optional, all given ones must hold.
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    /// Tag routing: a request whose tag header names a tag goes to that tag's group.
    #[serde(default)]
    pub dye: DyeConfig,
    /// Split of untagged traffic by weight; a single entry = no split.
    #[serde(default)]
    pub split: Vec<SplitEntryConfig>,
    /// `header:NAME`, `cookie:NAME` or `client_ip`.
    #[serde(default)]
    pub sticky: Option<String>,
    /// How long the gateway waits on the upstream.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Extra tries of a failed attempt on another target of the same group, within a budget.
    #[serde(default)]
    pub retries: RetriesConfig,
    /// Progressive delivery of a canary in this split; absent = none.
    #[serde(default)]
    pub rollout: Option<super::rollout::RolloutConfig>,
    /// Request rate limit of the route (429 with `retry-after` past it); absent = none.
    #[serde(default)]
    pub limits: Option<RateLimitConfig>,
    /// Answer plain-HTTP requests with 308 to the same URL on HTTPS (the port of the first
    /// `tls.listen` address, left out when 443) [false].
    #[serde(default)]
    pub https_redirect: bool,
    /// Shadow traffic: shares of the route's requests copied to other groups, their answers
    /// thrown away (and compared with the client's); see docs/mirroring.md.
    #[serde(default)]
    pub mirror: Vec<super::mirror::MirrorConfig>,
}

/// `routes[i].match`: every field optional; all given ones must hold.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Exact host, or `*.example.com` for any subdomain; the port is ignored.
    #[serde(default)]
    pub host: Option<String>,
    /// String prefix of the path (the same as `path: { prefix: ... }`; not with `path`).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// The raw path (not percent-decoded, without the query): `{ prefix: /api }`,
    /// `{ exact: /api/v1 }` or `{ regex: "^/api/v[0-9]+/" }` (search semantics: anchor with
    /// `^...$`).
    #[serde(default)]
    pub path: Option<PathConfig>,
    /// Methods, e.g. `[GET, POST]`.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Header conditions, each holding when some line of the header does: a value or a list
    /// (one of them), `{ regex: ... }`, `{ present: true|false }`, `{ range: [lo, hi] }`
    /// (decimal integers, inclusive), `{ not: [...] }` (none of them; absent holds).
    #[serde(default)]
    pub headers: Entries<ValueConfig>,
    /// Query parameter conditions, the same forms as `headers`, on percent-decoded names and
    /// values.
    #[serde(default)]
    pub query: Entries<ValueConfig>,
    /// Cookie conditions, the same forms as `headers`; a repeated cookie holds if any pair does.
    #[serde(default)]
    pub cookies: Entries<ValueConfig>,
    /// Networks (CIDR) or addresses, one of which holds the client address (the PROXY
    /// protocol source, else the peer, or behind trusted proxies the address they forwarded).
    #[serde(default)]
    pub client_ip: Option<Vec<String>>,
}

/// `match.path`: exactly one of `prefix`, `exact`, `regex`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct PathConfig {
    /// String prefix of the raw path.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The whole raw path.
    #[serde(default)]
    pub exact: Option<String>,
    /// A regular expression (Rust `regex` syntax) searched in the raw path.
    #[serde(default)]
    pub regex: Option<String>,
}

/// A condition on the values of a header, query parameter or cookie: a value or a list of
/// values (one of them), or one test.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueConfig {
    Values(Vec<String>),
    Test(ValueTestConfig),
}

/// `{ regex: ... }`, `{ present: bool }`, `{ range: [lo, hi] }` or `{ not: [...] }`: exactly
/// one key.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValueTestConfig {
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub present: Option<bool>,
    #[serde(default)]
    pub range: Option<Vec<RangeBound>>,
    #[serde(default)]
    pub not: Option<OneOrMany>,
}

/// A bound of `range`: a signed 64-bit whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeBound(pub i64);

impl<'de> Deserialize<'de> for RangeBound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "a whole number from -9223372036854775808 to 9223372036854775807";
        impl Visitor<'_> for V {
            type Value = RangeBound;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RangeBound, E> {
                Ok(RangeBound(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RangeBound, E> {
                i64::try_from(v)
                    .map(RangeBound)
                    .map_err(|_| E::custom(format!("found {v}, expected {EXPECTED}")))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<RangeBound, E> {
                i64::try_from(v)
                    .map(RangeBound)
                    .map_err(|_| E::custom(format!("found {v}, expected {EXPECTED}")))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<RangeBound, E> {
                i64::try_from(v)
                    .map(RangeBound)
                    .map_err(|_| E::custom(format!("found {v}, expected {EXPECTED}")))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ValueConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value, a list of values, or one of { regex: RE }, { present: BOOL }, { range: [LO, HI] }, { not: [VALUES] }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ValueConfig, E> {
                Ok(ValueConfig::Values(vec![s.to_string()]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ValueConfig, E> {
                Ok(ValueConfig::Values(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ValueConfig, E> {
                Ok(ValueConfig::Values(vec![v.to_string()]))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ValueConfig, E> {
                Ok(ValueConfig::Values(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ValueConfig, A::Error> {
                let list = OneOrMany::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ValueConfig::Values(list.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValueConfig, A::Error> {
                let t = ValueTestConfig::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ValueConfig::Test(t))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for ValueConfig {
    /// As `dyegate diff` shows it: `[web, mobile]`, `{regex: "^eu-"}`, `{range: [1000, 1999]}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueConfig::Values(v) => write!(f, "[{}]", v.join(", ")),
            ValueConfig::Test(t) => {
                let mut parts = Vec::new();
                if let Some(r) = &t.regex {
                    parts.push(format!("regex: {r:?}"));
                }
                if let Some(p) = t.present {
                    parts.push(format!("present: {p}"));
                }
                if let Some(r) = &t.range {
                    let r: Vec<String> = r.iter().map(|b| b.0.to_string()).collect();
                    parts.push(format!("range: [{}]", r.join(", ")));
                }
                if let Some(n) = &t.not {
                    parts.push(format!("not: [{}]", n.0.join(", ")));
                }
                write!(f, "{{{}}}", parts.join(", "))
            }
        }
    }
}

/// `routes[i].dye`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DyeConfig {
    /// The tag header [x-env-tag].
    #[serde(default = "default_dye_header")]
    pub header: String,
    /// Where the tag may come from, in order; the first source present wins: `header` (the
    /// tag header), `cookie:NAME`, `query:NAME` [header]. A tag from a cookie or the query is
    /// set as the tag header upstream; the cookie or parameter itself goes as the client sent
    /// it.
    #[serde(default)]
    pub from: Option<Vec<String>>,
    /// Tag -> upstream group; a request with that tag goes there.
    #[serde(default)]
    pub tags: Entries<String>,
    /// What a tag that maps to no group gets [base].
    #[serde(default)]
    pub on_unknown_tag: UnknownTagPolicy,
    /// What a tagged request gets when its lane has no healthy target.
    #[serde(default)]
    pub on_unhealthy_tag: UnhealthyTagPolicy,
    /// Networks (CIDR) whose tags are trusted; tags from other peers are stripped. Absent = all.
    #[serde(default)]
    pub trusted_sources: Option<Vec<String>>,
    /// Rate limit of the tagged requests of the route (instead of the route's `limits`), so a
    /// flood of tagged requests cannot swamp a small canary.
    #[serde(default)]
    pub limits: Option<RateLimitConfig>,
}

impl Default for DyeConfig {
    fn default() -> Self {
        DyeConfig {
            header: default_dye_header(),
            from: None,
            tags: Entries::default(),
            on_unknown_tag: UnknownTagPolicy::Base,
            on_unhealthy_tag: UnhealthyTagPolicy::Base,
            trusted_sources: None,
            limits: None,
        }
    }
}

/// `limits:` of a route or of its tagged lanes (`dye.limits`).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second per key, sustained (a whole number >= 1).
    #[schemars(range(min = RATE_PER_S_BOUND.min))]
    pub rate_per_s: u32,
    /// Requests allowed above `rate_per_s` within one second [0].
    #[serde(default)]
    pub burst: u32,
    /// What requests are counted by: `client_ip` [default], `header:NAME` or `route` (all
    /// requests of the route together).
    #[serde(default = "default_limit_key")]
    pub key: String,
}

/// `rate_per_s`'s bound (checked by `compile_limits.rs`).
pub const RATE_PER_S_BOUND: Bound<u64> =
    Bound::of("a whole number of requests per second", 1, u64::MAX);

fn default_limit_key() -> String {
    "client_ip".into()
}

pub fn default_dye_header() -> String {
    "x-env-tag".into()
}

/// What a tag that maps to no group gets.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnknownTagPolicy {
    /// Routed as if untagged: the split decides.
    #[default]
    Base,
    /// Answered with 503.
    Reject,
}

/// What a tagged request gets when every target of its lane's group is unhealthy or ejected.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnhealthyTagPolicy {
    /// Routed by the route's split, as if untagged (reason `fallback_unhealthy`).
    #[default]
    Base,
    /// Answered with 503 naming the group.
    Reject,
}

/// `routes[i].split[j]`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitEntryConfig {
    /// The upstream group.
    pub upstream: String,
    /// Relative weight, a whole number >= 0 (0 gets nothing).
    pub weight: Weight,
}

/// A value or a list of values (`x-client: web` or `x-client: [web, mobile]`).
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![s.to_string()]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}
