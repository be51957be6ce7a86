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
