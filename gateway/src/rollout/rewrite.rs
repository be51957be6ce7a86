//! A routes text with one route's split weights replaced, everything else byte for byte as it
//! was (comments, order, layout): what a rollout step commits, so that the version kept in the
//! history, its diff and a rollback to it are those of a plain routes file.

use crate::config::yaml::{self, NodeKind};

/// Replaces the weights of route `route`'s split entries (in file order) with `weights`.
pub fn rewrite_weights(text: &str, route: &str, weights: &[u32]) -> Result<String, String> {
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
                "route {route:?}: split[{j}].weight is written in a way the rollout cannot rewrite (an alias?)"
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

    #[test]
    fn replaces_only_the_weights_of_the_route() {
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
        let out = rewrite_weights(text, "shop", &[95, 5]).expect("rewritten");
        assert_eq!(
            out,
            text.replace("a, weight: 100 }   #", "a, weight: 95 }   #")
                .replace("weight: 0\n", "weight: 5\n")
        );
        assert!(out.contains("name: other # keep me\n    split: [{ upstream: a, weight: 100 }]"));
        assert!(rewrite_weights(text, "nope", &[1]).is_err());
        assert!(rewrite_weights(text, "shop", &[1]).is_err());
    }
}
