//! Small builders for the parts of `routes.yaml` that depend on runtime addresses; the routes
//! themselves stay literal YAML in each test, where a reader can see them.

use crate::upstream::Upstream;

/// The `upstreams:` section, one group per entry, each target the address of a running upstream
/// (or any literal address, e.g. a port nobody listens on).
///
/// ```
/// let yaml = dyegate_suite::gateway::upstreams_yaml(&[("shop-stable", &["127.0.0.1:9001"])]);
/// assert_eq!(yaml, "upstreams:\n  shop-stable: { targets: [\"127.0.0.1:9001\"] }\n");
/// ```
pub fn upstreams_yaml(groups: &[(&str, &[&str])]) -> String {
    let mut yaml = String::from("upstreams:\n");
    for (name, targets) in groups {
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        yaml.push_str(&format!(
            "  {name}: {{ targets: [{}] }}\n",
            targets.join(", ")
        ));
    }
    yaml
}

/// The `upstreams:` section for groups of one running upstream each, named after the group.
pub fn upstream_groups(groups: &[(&str, &Upstream)]) -> String {
    let mut yaml = String::from("upstreams:\n");
    for (name, up) in groups {
        yaml.push_str(&format!("  {name}: {{ targets: [\"{}\"] }}\n", up.target()));
    }
    yaml
}

/// A large routes.yaml for measurements: `n` routes, each with its own host/path pair, two tags
/// and a split between its own two groups (`s{i}` with two targets, `c{i}` with one), every
/// fourth sticky by header, every fifth matching a header too: the shape of the routing bench.
/// `canary_weight` is route `r0`'s canary weight (95 for the stable side), so two values give
/// two versions that differ in one line.
pub fn many_routes_yaml(n: usize, canary_weight: u32) -> String {
    use std::fmt::Write;
    let mut y = String::from("upstreams:\n");
    for i in 0..n {
        let port = 1000 + i % 60000;
        let _ = writeln!(
            y,
            "  s{i}: {{ targets: [\"127.0.0.1:{port}\", \"127.0.0.2:{port}\"] }}"
        );
        let _ = writeln!(y, "  c{i}: {{ targets: [\"127.0.0.3:{port}\"] }}");
    }
    y.push_str("routes:\n");
    for i in 0..n {
        let _ = writeln!(y, "  - name: r{i}");
        let _ = write!(
            y,
            "    match: {{ host: svc{}.example.com, path_prefix: /api/v{}",
            i % 100,
            i / 100
        );
        if i % 5 == 0 {
            y.push_str(", headers: { x-client: [web, mobile] }");
        }
        y.push_str(" }\n");
        let _ = writeln!(y, "    dye: {{ tags: {{ canary: c{i}, feat-{i}: c{i} }} }}");
        let canary = if i == 0 { canary_weight } else { 5 };
        let _ = writeln!(
            y,
            "    split: [{{ upstream: s{i}, weight: 95 }}, {{ upstream: c{i}, weight: {canary} }}]"
        );
        if i % 4 == 0 {
            y.push_str("    sticky: header:x-user-id\n");
        }
    }
    y
}
