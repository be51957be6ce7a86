//! A kept version rendered for a person: its text as written with the weights running rollouts
//! set over it written into the splits' `weight:` scalars, everything else byte for byte
//! (comments, order, layout). Used by `dyegate versions N` and `rollback --write-file`; the
//! gateway itself never passes weights as text.

use crate::config::yaml::{self, NodeKind};
use serde_json::Value;

/// `text` with each route's split weights replaced by `overrides` (`{route: [w, ...]}`, as
/// `GET /versions/N` gives them).
pub fn with_weights(text: &str, overrides: &Value) -> Result<String, String> {
    let Some(map) = overrides.as_object() else {
        return Ok(text.to_string());
    };
    let mut out = text.to_string();
    for (route, weights) in map {
        let weights: Vec<u64> = (weights.as_array().into_iter().flatten())
            .filter_map(Value::as_u64)
            .collect();
        out = route_weights(&out, route, &weights)?;
    }
    Ok(out)
}

/// Replaces the weights of route `route`'s split entries (in file order) with `weights`.
fn route_weights(text: &str, route: &str, weights: &[u64]) -> Result<String, String> {
    let root = yaml::parse(text)
        .map_err(|e| e.message)?
        .ok_or("empty routes text")?;
    let routes = root.find("routes");
    let NodeKind::Seq(items) = &routes.kind else {
        return Err("no routes list".into());
    };
    let index = items
        .iter()
        .position(|r| r.find("name").as_str() == Some(route) && r.find("name") != r)
        .ok_or_else(|| format!("route {route:?} not found"))?;
    let split = root.find(&format!("routes[{index}].split"));
    let NodeKind::Seq(entries) = &split.kind else {
        return Err(format!("route {route:?} has no split list"));
    };
    if entries.len() != weights.len() {
        return Err(format!(
            "route {route:?} has {} split entries, the rollout {}",
            entries.len(),
            weights.len()
        ));
    }
    // Byte offsets of the weights' scalars, then replaced from the last one back.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut spans = Vec::with_capacity(weights.len());
    for (j, entry) in entries.iter().enumerate() {
        let node = entry.find("weight");
        let value = match (&node.kind, node == entry) {
            (NodeKind::Scalar { value, plain: true }, false) => value,
            _ => {
                return Err(format!(
                    "route {route:?}: split[{j}].weight is not a plain number"
                ))
            }
        };
        let start = line_starts
            .get(node.mark.line.saturating_sub(1))
            .and_then(|l| {
                let line = &text[*l..];
                line.char_indices()
                    .nth(node.mark.col.saturating_sub(1))
                    .map(|(i, _)| l + i)
            })
            .ok_or_else(|| format!("route {route:?}: split[{j}].weight not located"))?;
        if !text[start..].starts_with(value.as_str()) {
            return Err(format!(
                "route {route:?}: split[{j}].weight is written in a way that cannot be replaced (an alias?)"
            ));
        }
        spans.push((start, start + value.len(), weights[j]));
    }
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for (a, b, w) in spans {
        out.replace_range(a..b, &w.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_only_the_weights_of_the_routes_named() {
        let text = concat!(
            "upstreams: {a: {targets: ['127.0.0.1:1']}, b: {targets: ['127.0.0.1:2']}}\n",
            "routes:\n",
            "  - name: other # keep me\n",
            "    split: [{ upstream: a, weight: 100 }]\n",
            "  - name: shop\n",
            "    split:\n",
            "      - { upstream: a, weight: 100 }   # stable\n",
            "      - upstream: b\n",
            "        weight: 0\n",
        );
        let out = with_weights(text, &json!({ "shop": [95, 5] })).expect("written");
        assert_eq!(
            out,
            text.replace("a, weight: 100 }   #", "a, weight: 95 }   #")
                .replace("weight: 0\n", "weight: 5\n")
        );
        assert_eq!(with_weights(text, &Value::Null).as_deref(), Ok(text));
        assert!(with_weights(text, &json!({ "nope": [1] })).is_err());
        assert!(with_weights(text, &json!({ "shop": [1] })).is_err());
    }
}
