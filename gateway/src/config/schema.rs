//! JSON Schema (draft 2020-12) of `routes.yaml` and `gateway.yaml`, generated from the serde
//! structs of [`super::settings::model`] and [`super::table::model`] by `schemars` (field descriptions are their doc comments), for
//! editors (`# yaml-language-server: $schema=...`) and `dyegate schema`. The types that decode
//! by hand (weights, durations, targets, mappings kept as entries) describe themselves here, with
//! the same ranges their `Deserialize` enforces. The schema checks shape, types, ranges and
//! field names; references between entries (a split naming an unknown group) and address
//! syntax are `dyegate check`'s.

use super::entries::Entries;
use super::settings::listen::ListenConfig;
use super::settings::model::GatewayConfig;
use super::settings::runtime::{Threads, MAX_THREADS};
use super::table::containment::RetryOnConfig;
use super::table::model::{OneOrMany, RoutesFile, TargetConfig, ValueConfig, Weight, MAX_WEIGHT};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;

/// Which file a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFile {
    Routes,
    Gateway,
}

impl SchemaFile {
    pub const ALL: [SchemaFile; 2] = [SchemaFile::Routes, SchemaFile::Gateway];

    /// The name of the shipped file, `conf/schema/<name>.json`.
    pub fn name(self) -> &'static str {
        match self {
            SchemaFile::Routes => "routes",
            SchemaFile::Gateway => "gateway",
        }
    }
}

/// The schema of `file`, as pretty-printed JSON with a trailing newline (what `dyegate schema`
/// prints and `conf/schema/*.json` holds).
pub fn schema_json(file: SchemaFile) -> String {
    let mut schema = match file {
        SchemaFile::Routes => schemars::schema_for!(RoutesFile),
        SchemaFile::Gateway => schemars::schema_for!(GatewayConfig),
    };
    let (title, description) = match file {
        SchemaFile::Routes => (
            "dyegate routes.yaml",
            "The routing table: upstream groups and routes. Reloaded live; `dyegate check` \
             validates it, references between entries included.",
        ),
        SchemaFile::Gateway => (
            "dyegate gateway.yaml",
            "Static settings of the gateway process; a change needs a restart or an upgrade. \
             Every key has a default.",
        ),
    };
    schema.insert("title".into(), title.into());
    schema.insert("description".into(), description.into());
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is plain JSON");
    text.push('\n');
    text
}

/// An integer schema with bounds and a description.
fn integer(min: u64, max: u64, description: &str) -> Schema {
    json_schema!({
        "type": "integer",
        "minimum": min,
        "maximum": max,
        "description": description,
    })
}

impl JsonSchema for Weight {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Weight".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        integer(
            0,
            u64::from(MAX_WEIGHT),
            "A whole number >= 0, relative; 0 gets nothing.",
        )
    }
}

impl JsonSchema for Threads {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Threads".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of worker threads, or `auto` (one per core).",
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": MAX_THREADS },
                { "const": "auto" },
            ],
        })
    }
}

impl JsonSchema for RetryOnConfig {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "RetryOn".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A failure that is retried: connect_failure, reset, timeout, or an upstream status 500, 502, 503, 504.",
            "enum": ["connect_failure", "reset", "timeout", "500", "502", "503", "504", 500, 502, 503, 504],
        })
    }
}

impl JsonSchema for TargetConfig {
    fn schema_name() -> Cow<'static, str> {
        "Target".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let weight = generator.subschema_for::<Weight>();
        json_schema!({
            "description": "A target: \"IP:PORT\" or \"NAME:PORT\" (a DNS name: one target per A/AAAA address, re-resolved as gateway.yaml `dns` says), or { addr: ..., weight: N } (weight default 1).",
            "anyOf": [
                { "type": "string", "description": "IP:PORT or NAME:PORT, weight 1." },
                {
                    "type": "object",
                    "properties": {
                        "addr": { "type": "string", "description": "IP:PORT or NAME:PORT." },
                        "weight": weight,
                    },
                    "required": ["addr"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

impl JsonSchema for ListenConfig {
    fn schema_name() -> Cow<'static, str> {
        "Listen".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A listener: \"IP:PORT\", or { addr: \"IP:PORT\", proxy_protocol: true, proxy_protocol_sources: [NETWORKS] } for one behind a layer-4 balancer that sends a PROXY protocol header (v1 or v2) first.",
            "anyOf": [
                { "type": "string", "description": "IP:PORT." },
                {
                    "type": "object",
                    "properties": {
                        "addr": { "type": "string", "description": "IP:PORT." },
                        "proxy_protocol": {
                            "type": "boolean",
                            "description": "Every connection starts with a PROXY protocol header (v1 or v2); one without is closed [false].",
                        },
                        "proxy_protocol_sources": {
                            "type": "array",
                            "items": { "type": "string" },
                            "minItems": 1,
                            "description": "Networks (CIDR) or addresses of the balancers allowed to connect; other peers are closed at accept. Absent: any peer.",
                        },
                    },
                    "required": ["addr"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

impl<V: JsonSchema> JsonSchema for Entries<V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Entries_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        // Empty (null) is an empty mapping, as in the decoder.
        json_schema!({
            "type": ["object", "null"],
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

impl JsonSchema for OneOrMany {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "OneOrMany".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A value, or a list of values (one must match).",
            "anyOf": [
                { "type": ["string", "integer", "boolean"] },
                { "type": "array", "items": { "type": "string" } },
            ],
        })
    }
}

impl JsonSchema for ValueConfig {
    fn schema_name() -> Cow<'static, str> {
        "Condition".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let values = json_schema!({
            "type": "array",
            "items": { "type": ["string", "integer", "boolean"] },
        });
        json_schema!({
            "description": "A condition on the values of a header, query parameter or cookie; it holds when some value satisfies it (`present: false` and `not`: when none does).",
            "anyOf": [
                { "type": ["string", "integer", "boolean"], "description": "This value." },
                { "type": "array", "items": { "type": ["string", "integer", "boolean"] }, "description": "One of these values." },
                {
                    "type": "object",
                    "properties": {
                        "regex": { "type": "string", "description": "A regular expression (Rust `regex` syntax), searched: anchor with ^...$." },
                        "present": { "type": "boolean", "description": "true: present (any value); false: absent." },
                        "range": {
                            "type": "array",
                            "items": { "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX },
                            "minItems": 2,
                            "maxItems": 2,
                            "description": "[LO, HI]: a signed 64-bit decimal integer within, inclusive; other values do not match.",
                        },
                        "not": {
                            "anyOf": [{ "type": ["string", "integer", "boolean"] }, values],
                            "description": "None of these values (absent holds).",
                        },
                    },
                    "minProperties": 1,
                    "maxProperties": 1,
                    "additionalProperties": false,
                },
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(file: SchemaFile) -> serde_json::Value {
        serde_json::from_str(&schema_json(file)).expect("valid JSON")
    }

    /// Paths of object properties without a description, anywhere under `node`.
    fn undocumented(node: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    for (name, prop) in props {
                        if prop.get("description").is_none() {
                            out.push(format!("{path}.{name}"));
                        }
                    }
                }
                for (key, value) in map {
                    undocumented(value, &format!("{path}/{key}"), out);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    undocumented(item, path, out);
                }
            }
            _ => {}
        }
    }

    /// Editors show these as hover docs: a new config field needs a doc comment.
    #[test]
    fn every_field_is_described() {
        for file in SchemaFile::ALL {
            let mut missing = Vec::new();
            undocumented(&schema(file), file.name(), &mut missing);
            assert!(
                missing.is_empty(),
                "fields without a doc comment: {missing:?}"
            );
        }
    }

    #[test]
    fn draft_2020_12_with_descriptions_from_doc_comments() {
        let s = schema(SchemaFile::Routes);
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["title"], "dyegate routes.yaml");
        assert_eq!(s["required"], serde_json::json!(["routes"]));
        assert_eq!(s["additionalProperties"], false);
        let route = &s["$defs"]["RouteConfig"];
        assert_eq!(
            route["properties"]["name"]["description"],
            "Unique; used in logs and metrics."
        );
        assert!(route["properties"]["match"].is_object(), "{route}");
        let weight = &s["$defs"]["SplitEntryConfig"]["properties"]["weight"];
        assert_eq!(weight["minimum"], 0);
        assert_eq!(weight["maximum"], MAX_WEIGHT);
        let g = schema(SchemaFile::Gateway);
        assert_eq!(g["title"], "dyegate gateway.yaml");
        assert_eq!(
            g["properties"]["listen"]["description"],
            "Proxy listeners, `IP:PORT`."
        );
    }
}
