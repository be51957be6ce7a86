//! Checks across fields of routes.yaml: references, duplicates, weights. Collects every issue.
//! Conversions of single values (addresses, header names, CIDRs) are checked by `compile.rs`,
//! the only place strings become typed values.

use super::model::{RouteConfig, RoutesConfig, UpstreamConfig};
use crate::config::error::Issue;
use crate::routing::Carried;
use dyegate_plugins::dye_tag::is_valid_tag;
use foldhash::{HashMap, HashMapExt};
use std::collections::hash_map::Entry;

/// All cross-field issues of a routes file, and the first index of each upstream name
/// (compile's group ids when valid). With `unchanged` (the entries of a file that are those of a
/// valid previous version, see `incremental`), their own checks are skipped: they cannot fail
/// again; only those across entries (names, references) run for them.
pub fn validate<'a>(
    cfg: &'a RoutesConfig,
    unchanged: Option<&Carried>,
) -> (Vec<Issue>, HashMap<&'a str, usize>) {
    let is_unchanged = |list: Option<&Vec<Option<usize>>>, i: usize| {
        list.and_then(|l| l.get(i)).is_some_and(Option::is_some)
    };
    let mut issues = Vec::new();
    let mut upstream_names: HashMap<&str, usize> = HashMap::with_capacity(cfg.upstreams.len());
    for (i, (name, up)) in cfg.upstreams.iter().enumerate() {
        upstream_names.entry(name.as_str()).or_insert(i);
        if is_unchanged(unchanged.map(|o| &o.groups), i) {
            continue;
        }
        validate_upstream(name, up.as_deref(), &mut issues);
    }

    let known = |name: &str| upstream_names.contains_key(name);
    // Only an issue needs it (sorting every name on each reload would not be free).
    let expected = std::cell::OnceCell::new();
    let expected_upstreams = || {
        expected
            .get_or_init(|| {
                let mut names: Vec<&str> = cfg.upstreams.iter().map(|(n, _)| n.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                if names.is_empty() {
                    "an upstream defined under `upstreams` (none is defined)".to_string()
                } else if names.len() <= 8 {
                    crate::config::yaml::one_of(&names)
                } else {
                    "an upstream defined under `upstreams`".to_string()
                }
            })
            .as_str()
    };

    let mut route_names: HashMap<&str, usize> = HashMap::with_capacity(cfg.routes.len());
    for (i, route) in cfg.routes.iter().enumerate() {
        let Some(route) = route else { continue };
        let path = &Path(i);
        if route.name.trim().is_empty() {
            issues.push(Issue::new(
                format!("{path}.name"),
                "found an empty name, expected a route name",
            ));
        } else {
            match route_names.entry(route.name.as_str()) {
                Entry::Occupied(first) => issues.push(Issue::new(
                    format!("{path}.name"),
                    format!(
                        "found duplicate route name {:?} (also routes[{}]), expected unique names",
                        route.name,
                        first.get()
                    ),
                )),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        if is_unchanged(unchanged.map(|o| &o.routes), i) {
            references(route, path, &known, &expected_upstreams, &mut issues);
        } else {
            validate_route(route, path, &known, &expected_upstreams, &mut issues);
        }
    }
    (issues, upstream_names)
}

/// The checks of one upstream entry on its own: name, targets, weights.
fn validate_upstream(name: &str, up: Option<&UpstreamConfig>, issues: &mut Vec<Issue>) {
    // Paths are built only for an issue: this runs on every reload of every entry.
    let path = || format!("upstreams.{name}");
    if name.trim().is_empty() {
        issues.push(Issue::new(
            path(),
            "found an empty upstream name, expected a name",
        ));
    }
    let Some(up) = up else { return };
    if up.targets.is_empty() {
        issues.push(Issue::new(
            format!("{}.targets", path()),
            "found an empty list, expected at least one target",
        ));
    } else if up.targets.iter().all(|t| t.weight.0 == 0) {
        issues.push(Issue::new(
            format!("{}.targets", path()),
            "found all target weights 0, expected at least one weight above 0",
        ));
    }
    for (j, t) in up.targets.iter().enumerate() {
        if let Some(first) = up.targets[..j].iter().position(|o| o.addr == t.addr) {
            issues.push(Issue::new(
                format!("{}.targets[{j}]", path()),
                format!(
                    "found target {:?} twice (also targets[{first}]), expected each target once",
                    t.addr
                ),
            ));
        }
    }
}

/// The checks of a route that depend on other entries: the upstreams its split and tags name.
fn references<'e>(
    route: &RouteConfig,
    path: &Path,
    known: &dyn Fn(&str) -> bool,
    expected_upstreams: &dyn Fn() -> &'e str,
    issues: &mut Vec<Issue>,
) {
    for (j, entry) in route.split.iter().enumerate() {
        if !known(&entry.upstream) {
            issues.push(unknown_upstream(
                format!("{path}.split[{j}].upstream"),
                &entry.upstream,
                expected_upstreams,
            ));
        }
    }
    for (tag, group) in &route.dye.tags.0 {
        if !known(group) {
            issues.push(unknown_upstream(
                format!("{path}.dye.tags.{tag}"),
                group,
                expected_upstreams,
            ));
        }
    }
    mirror_references(route, path, known, expected_upstreams, issues);
}

/// The groups a route's mirrors name.
fn mirror_references<'e>(
    route: &RouteConfig,
    path: &Path,
    known: &dyn Fn(&str) -> bool,
    expected_upstreams: &dyn Fn() -> &'e str,
    issues: &mut Vec<Issue>,
) {
    for (j, m) in route.mirror.iter().enumerate() {
        if !known(&m.upstream) {
            issues.push(unknown_upstream(
                format!("{path}.mirror[{j}].upstream"),
                &m.upstream,
                expected_upstreams,
            ));
        }
        if let Some(b) = m.compare.as_ref().and_then(|c| c.baseline.as_ref()) {
            if !known(b) {
                let at = format!("{path}.mirror[{j}].compare.baseline");
                issues.push(unknown_upstream(at, b, expected_upstreams));
            }
        }
    }
}

fn unknown_upstream<'e>(
    path: String,
    name: &str,
    expected_upstreams: &dyn Fn() -> &'e str,
) -> Issue {
    Issue::new(
        path,
        format!(
            "found unknown upstream {name:?}, expected {}",
            expected_upstreams()
        ),
    )
}

/// `routes[i]`, formatted only when an issue names it.
struct Path(usize);

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "routes[{}]", self.0)
    }
}

fn validate_route<'e>(
    route: &RouteConfig,
    path: &Path,
    known: &dyn Fn(&str) -> bool,
    expected_upstreams: &dyn Fn() -> &'e str,
    issues: &mut Vec<Issue>,
) {
    if route.split.is_empty() {
        issues.push(Issue::new(
            format!("{path}.split"),
            "found no entries, expected at least one { upstream: NAME, weight: N } for untagged traffic",
        ));
    } else if route.split.iter().all(|e| e.weight.0 == 0) {
        issues.push(Issue::new(
            format!("{path}.split"),
            "found all weights 0, expected a total weight above 0",
        ));
    }
    for (j, entry) in route.split.iter().enumerate() {
        if !known(&entry.upstream) {
            issues.push(unknown_upstream(
                format!("{path}.split[{j}].upstream"),
                &entry.upstream,
                expected_upstreams,
            ));
        }
        if let Some(first) = route.split[..j]
            .iter()
            .position(|o| o.upstream == entry.upstream)
        {
            issues.push(Issue::new(
                format!("{path}.split[{j}].upstream"),
                format!(
                    "found upstream {:?} twice in this split (also split[{first}]), expected each group once",
                    entry.upstream
                ),
            ));
        }
    }

    let tags = &route.dye.tags.0;
    for (k, (tag, group)) in tags.iter().enumerate() {
        let tpath = || format!("{path}.dye.tags.{tag}");
        if tag.trim().is_empty() {
            issues.push(Issue::new(
                format!("{path}.dye.tags"),
                "found an empty tag, expected 1 to 64 characters of A-Z a-z 0-9 - _ .",
            ));
            continue;
        }
        if !is_valid_tag(tag) {
            issues.push(Issue::new(
                tpath(),
                format!("found tag {tag:?}, expected 1 to 64 characters of A-Z a-z 0-9 - _ ."),
            ));
        }
        if tags[..k].iter().any(|(t, _)| t == tag) {
            issues.push(Issue::new(
                tpath(),
                format!("found tag {tag:?} twice, expected unique tags"),
            ));
        }
        if !known(group) {
            issues.push(unknown_upstream(tpath(), group, expected_upstreams));
        }
    }
    super::rollout::validate_rollout(route, &path.to_string(), issues);
    super::mirror::validate_mirror(route, &path.to_string(), issues);
    mirror_references(route, path, known, expected_upstreams, issues);
    if let Some(list) = &route.dye.trusted_sources {
        if list.is_empty() {
            issues.push(Issue::new(
                format!("{path}.dye.trusted_sources"),
                "found an empty list, expected at least one network (omit the field to trust every peer)",
            ));
        }
    }
}
