//! What the table in use is, rendered at scrape time straight from that table (nothing to keep
//! in step across reloads): `dyegate_routing_info{sha256}` (the content of the version served,
//! the same on every instance serving the same file, whatever its version number there) and
//! `dyegate_split_weight{route,upstream_group}` (the configured weights, so that a dashboard can
//! put the realised split of `dyegate_decisions_total` next to the intended one).

use super::text_format::esc;
use crate::routing::RouteTable;
use std::fmt::Write;

/// Appends both families to a scrape; `sha256` is the served version's.
pub fn render_table_info(table: &RouteTable, sha256: &str, out: &mut String) {
    out.push_str(
        "# HELP dyegate_routing_info The routing table in use: sha256 of its routes file.\n\
         # TYPE dyegate_routing_info gauge\n",
    );
    let _ = writeln!(out, "dyegate_routing_info{{sha256=\"{}\"}} 1", esc(sha256));
    out.push_str(
        "# HELP dyegate_split_weight Configured split weight of each group of a route (relative; \
         divide by the route's sum for its share).\n# TYPE dyegate_split_weight gauge\n",
    );
    for route in table.routes() {
        let split = &route.split;
        for (gid, weight) in split.groups.iter().zip(&split.weights) {
            let Some(group) = table.group(*gid) else {
                continue;
            };
            let _ = writeln!(
                out,
                "dyegate_split_weight{{route=\"{}\",upstream_group=\"{}\"}} {weight}",
                esc(&route.name),
                esc(&group.name)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::routes_from_text;

    #[test]
    fn the_sha_and_one_weight_per_split_entry() {
        let loaded = routes_from_text(
            "routes.yaml",
            [
                "upstreams:",
                "  s: { targets: [\"127.0.0.1:1\"] }",
                "  c: { targets: [\"127.0.0.1:2\"] }",
                "routes:",
                "  - name: shop",
                "    split: [{ upstream: s, weight: 95 }, { upstream: c, weight: 5 }]",
                "  - name: 'a\"b'",
                "    split: [{ upstream: s, weight: 1 }]",
            ]
            .join("\n")
            .into_bytes(),
            None,
        )
        .expect("valid");
        let mut out = String::new();
        render_table_info(&loaded.table, "ab12", &mut out);
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "dyegate_routing_info{sha256=\"ab12\"} 1",
                "dyegate_split_weight{route=\"shop\",upstream_group=\"s\"} 95",
                "dyegate_split_weight{route=\"shop\",upstream_group=\"c\"} 5",
                "dyegate_split_weight{route=\"a\\\"b\",upstream_group=\"s\"} 1",
            ]
        );
    }
}
