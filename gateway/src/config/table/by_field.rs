//! A routes.yaml entry (a route, an upstream group) that failed to decode as a whole, decoded
//! again field by field, list elements one by one, so that every error in it is reported and
//! its good fields are still validated. Failed fields keep a placeholder and are recorded as
//! failed (validation issues on them would only repeat the decoding error).
//!
//! The field names come from serde ([`field_names`]), so they cannot drift from the struct; the
//! one table per struct is [`ByField::set`], and a unit test checks it takes every field.

use super::model::{RouteConfig, SplitEntryConfig, TargetConfig, UpstreamConfig, Weight};
use crate::config::error::{ConfigError, Mark};
use crate::config::yaml::{self, join_index, join_key, DeError, Node, NodeKind};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::forward_to_deserialize_any;

/// The field names serde decodes `T` with (declaration order, renames applied), read from the
/// `deserialize_struct` call its derive makes.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field names were asked for"))
        }
        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// A struct that can be decoded field by field.
pub trait ByField: DeserializeOwned {
    /// The field that must be given, and a YAML value that decodes into it, for the struct to
    /// start from (`name: ""`): every other field has a default.
    const REQUIRED: (&'static str, &'static str);
    /// Decodes field `key` into `self`; false when the struct has no such field.
    fn set(&mut self, key: &str, field: Field<'_, '_>) -> bool;
}

impl ByField for RouteConfig {
    const REQUIRED: (&'static str, &'static str) = ("name", "\"\"");
    fn set(&mut self, key: &str, f: Field<'_, '_>) -> bool {
        match key {
            "name" => f.set(&mut self.name),
            "match" => f.set(&mut self.matches),
            "dye" => f.set(&mut self.dye),
            "split" => f.list(&mut self.split, || SplitEntryConfig {
                upstream: String::new(),
                weight: Weight(0),
            }),
            "sticky" => f.set(&mut self.sticky),
            "timeouts" => f.set(&mut self.timeouts),
            "retries" => f.set(&mut self.retries),
            "rollout" => f.set(&mut self.rollout),
            "limits" => f.set(&mut self.limits),
            "https_redirect" => f.set(&mut self.https_redirect),
            "mirror" => f.list(&mut self.mirror, super::mirror::MirrorConfig::placeholder),
            _ => return false,
        }
        true
    }
}

impl ByField for UpstreamConfig {
    const REQUIRED: (&'static str, &'static str) = ("targets", "[]");
    fn set(&mut self, key: &str, f: Field<'_, '_>) -> bool {
        match key {
            "targets" => f.list(&mut self.targets, || TargetConfig {
                addr: String::new(),
                weight: Weight(0),
            }),
            "health" => f.set(&mut self.health),
            "outlier" => f.set(&mut self.outlier),
            "max_in_flight" => f.set(&mut self.max_in_flight),
            "protocol" => f.set(&mut self.protocol),
            "tls" => f.set(&mut self.tls),
            _ => return false,
        }
        true
    }
}

/// Where decoding errors go: the located errors, and the paths that failed.
pub struct Failures<'a> {
    pub file: &'a str,
    pub errors: &'a mut Vec<ConfigError>,
    pub failed: &'a mut Vec<String>,
}

impl Failures<'_> {
    fn error(&mut self, mark: Mark, path: String, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            mark,
            path,
            message,
        });
    }

    /// The decoding error of `node` (located where it says, else at `node`), and `path`
    /// recorded as failed.
    fn fail(&mut self, e: DeError, node: &Node, path: String) {
        let (mark, at) = e.located.unwrap_or((node.mark, path.clone()));
        self.error(mark, at, e.message);
        self.failed.push(path);
    }
}

/// One field's value being decoded, and where its errors go.
pub struct Field<'a, 'b> {
    node: &'a Node,
    path: String,
    out: &'a mut Failures<'b>,
}

impl Field<'_, '_> {
    /// Decodes the value into `slot`; on error `slot` keeps its placeholder.
    pub fn set<T: DeserializeOwned>(self, slot: &mut T) {
        match yaml::from_node(self.node, &self.path) {
            Ok(v) => *slot = v,
            Err(e) => self.out.fail(e, self.node, self.path),
        }
    }

    /// A list decoded element by element: a failed element becomes `placeholder()`, so the
    /// others keep their index.
    pub fn list<T: DeserializeOwned>(self, slot: &mut Vec<T>, placeholder: impl Fn() -> T) {
        let NodeKind::Seq(items) = &self.node.kind else {
            return self.set(slot);
        };
        for (j, item) in items.iter().enumerate() {
            let path = join_index(&self.path, j);
            match yaml::from_node(item, &path) {
                Ok(v) => slot.push(v),
                Err(e) => {
                    self.out.fail(e, item, path);
                    slot.push(placeholder());
                }
            }
        }
    }
}

/// Decodes `node` (at `path`), which failed as a whole with `whole`, field by field. `None` when
/// it is not a mapping at all.
pub fn decode<T: ByField>(
    node: &Node,
    path: &str,
    whole: DeError,
    out: &mut Failures<'_>,
) -> Option<T> {
    let NodeKind::Map(entries) = &node.kind else {
        out.fail(whole, node, path.to_string());
        return None;
    };
    let (required, _) = T::REQUIRED;
    let Some(mut value) = start::<T>() else {
        // Not reached: a unit test decodes every `REQUIRED`.
        out.fail(whole, node, path.to_string());
        return None;
    };
    let mut has_required = false;
    for (k, v) in entries {
        let key = k.as_str().unwrap_or_default();
        let fpath = join_key(path, key);
        has_required |= key == required;
        let field = Field {
            node: v,
            path: fpath.clone(),
            out,
        };
        if !value.set(key, field) {
            let name = k.as_str().map_or_else(|| k.describe(), str::to_string);
            let message = format!(
                "found unknown field `{name}`, expected {}",
                yaml::one_of(field_names::<T>())
            );
            out.error(k.mark, fpath, message);
        }
    }
    if !has_required {
        let message = format!("missing required field `{required}`");
        out.error(node.mark, path.to_string(), message);
        out.failed.push(join_key(path, required));
    }
    Some(value)
}

/// `T` with only its required field, set to its placeholder.
fn start<T: ByField>() -> Option<T> {
    let (required, empty) = T::REQUIRED;
    let node = yaml::parse(&format!("{required}: {empty}")).ok()??;
    yaml::from_node(&node, "").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::table::model::RoutesFile;

    fn takes_every_field<T: ByField>() {
        let names = field_names::<T>();
        assert!(names.contains(&T::REQUIRED.0), "{names:?}");
        let mut value = start::<T>().expect("REQUIRED decodes");
        let node = yaml::parse("x").ok().flatten().expect("a node");
        for name in names {
            let (mut errors, mut failed) = (Vec::new(), Vec::new());
            let mut out = Failures {
                file: "f",
                errors: &mut errors,
                failed: &mut failed,
            };
            let field = Field {
                node: &node,
                path: (*name).to_string(),
                out: &mut out,
            };
            assert!(
                value.set(name, field),
                "ByField::set has no arm for `{name}`"
            );
        }
        let (mut errors, mut failed) = (Vec::new(), Vec::new());
        let mut out = Failures {
            file: "f",
            errors: &mut errors,
            failed: &mut failed,
        };
        let field = Field {
            node: &node,
            path: String::new(),
            out: &mut out,
        };
        assert!(!value.set("no_such_field", field));
    }

    /// A new field of a route or an upstream group is decoded field by field as soon as it is
    /// in the struct, or this test names the missing arm.
    #[test]
    fn every_field_of_the_struct_is_decoded_field_by_field() {
        takes_every_field::<RouteConfig>();
        takes_every_field::<UpstreamConfig>();
    }

    #[test]
    fn field_names_are_serdes() {
        assert_eq!(field_names::<RoutesFile>(), ["upstreams", "routes"]);
        let route = field_names::<RouteConfig>();
        assert_eq!(route.first(), Some(&"name"));
        assert!(route.contains(&"match") && !route.contains(&"matches"));
    }
}
