//! Validated config model to [`RouteTable`]: the only place strings become header names, socket
//! addresses and DNS names (`compile_target.rs`), networks and weights. Every conversion failure is collected as an [`Issue`].

use super::model::{DyeConfig, RouteConfig, RoutesConfig, UnknownTagPolicy};
use crate::config::error::Issue;
use crate::routing::Overrides;
use crate::routing::{
    Carried, Dye, DyeUpstream, Group, Route, RouteTable, Split, StickyKey, TagFallback,
};
use bytes::Bytes;
use dyegate_plugins::{SmoothWrr, StickyRanges, TrustedSources};
use foldhash::{HashMap, HashMapExt};
use http::{HeaderName, HeaderValue};
use pingora::http::IntoCaseHeaderName;
use std::path::Path;
use std::sync::Arc;

/// What a reload can carry over from the running table: its entries whose text is unchanged
/// (`unchanged`: for each upstream and route of the new file, its index in `table`'s file).
pub struct Previous<'a> {
    pub table: &'a RouteTable,
    pub unchanged: &'a Carried,
}

/// Compiles a routes file. Returns every issue found when any conversion fails.
///
/// With `previous`, every group and route whose entry is unchanged is carried over from it (a
/// route only when its groups keep their ids): the same `Arc`, round-robin position included;
/// the returned [`Carried`] says which were, and from where. `names` (from validation: each
/// upstream name's first index) saves building the name → group id map again when every name
/// is unique.
///
/// Relative file paths in the text (`tls.ca`) are resolved against `base`.
pub fn compile<'a>(
    cfg: &'a RoutesConfig,
    previous: Option<Previous<'_>>,
    names: Option<&HashMap<&'a str, usize>>,
    base: &Path,
    overrides: &Overrides,
) -> Result<(RouteTable, Carried), Vec<Issue>> {
    let mut carried = Carried::default();
    let mut issues = Vec::new();
    // Unique names, every entry decoded: upstream i becomes group i, as `names` says.
    let given = names.filter(|n| {
        n.len() == cfg.upstreams.len() && cfg.upstreams.iter().all(|(_, u)| u.is_some())
    });
    let (groups, own) = compile_groups(
        cfg,
        previous.as_ref(),
        given.is_some(),
        base,
        &mut carried,
        &mut issues,
    );
    let group_ids = match given {
        // Group i is upstream i only if every upstream became a group.
        Some(_) if groups.len() != cfg.upstreams.len() => {
            issues.push(Issue::new(
                "upstreams",
                "found an upstream that compiles to no group",
            ));
            return Err(issues);
        }
        Some(n) => n,
        None => &own,
    };
    let routes = compile_routes(
        cfg,
        previous.as_ref(),
        group_ids,
        overrides,
        &mut carried,
        &mut issues,
    );
    if issues.is_empty() && routes.len() == cfg.routes.len() {
        Ok((RouteTable::new(routes, groups), carried))
    } else {
        Err(issues)
    }
}

/// The groups, in file order, each carried over from `previous` when its entry is unchanged;
/// and (unless `names_given`) the name → group id map.
fn compile_groups<'a>(
    cfg: &'a RoutesConfig,
    previous: Option<&Previous<'_>>,
    names_given: bool,
    base: &Path,
    carried: &mut Carried,
    issues: &mut Vec<Issue>,
) -> (Vec<Arc<Group>>, HashMap<&'a str, usize>) {
    let mut groups = Vec::with_capacity(cfg.upstreams.len());
    let mut own: HashMap<&str, usize> =
        HashMap::with_capacity(if names_given { 0 } else { cfg.upstreams.len() });
    for (i, (name, up)) in cfg.upstreams.iter().enumerate() {
        let Some(up) = up else { continue };
        // A group that reads a file (its CA) is built again: the file may have changed.
        let origin = previous
            .and_then(|p| p.unchanged.group(i))
            .filter(|_| !super::compile_transport::reads_files(up));
        let same = previous
            .zip(origin)
            .and_then(|(p, j)| p.table.groups().get(j))
            .filter(|g| {
                g.name.as_ref() == name.as_str()
                    && (names_given || !own.contains_key(name.as_str()))
            });
        if let Some(g) = same {
            if !names_given {
                own.insert(name, groups.len());
            }
            groups.push(g.clone());
            carried.groups.push(origin);
            continue;
        }
        // Paths are built only for an issue: this runs on every reload of every entry.
        let path = || format!("upstreams.{name}");
        let mut entries = Vec::with_capacity(up.targets.len());
        for (j, t) in up.targets.iter().enumerate() {
            match super::compile_target::parse_target(&t.addr, t.weight.0) {
                Ok(entry) => entries.push(entry),
                Err(msg) => issues.push(Issue::new(format!("{}.targets[{j}]", path()), msg)),
            }
        }
        if !names_given && own.contains_key(name.as_str()) {
            issues.push(Issue::new(
                path(),
                format!("found upstream {name:?} twice, expected unique names"),
            ));
            continue;
        }
        let policy = super::compile_containment::group_policy(up, &path, issues);
        let Some(transport) = super::compile_transport::transport(up, base, &path, issues) else {
            continue;
        };
        if let Some(g) = Group::new(name, entries, transport).map(|g| g.with_policy(policy)) {
            if !names_given {
                own.insert(name, groups.len());
            }
            groups.push(Arc::new(g));
            carried.groups.push(None);
        }
    }
    (groups, own)
}

/// The routes, in file order, each carried over from `previous` when its entry is unchanged and
/// its groups keep their ids.
fn compile_routes(
    cfg: &RoutesConfig,
    previous: Option<&Previous<'_>>,
    group_ids: &HashMap<&str, usize>,
    overrides: &Overrides,
    carried: &mut Carried,
    issues: &mut Vec<Issue>,
) -> Vec<Arc<Route>> {
    let mut routes = Vec::with_capacity(cfg.routes.len());
    for (i, route) in cfg.routes.iter().enumerate() {
        let Some(route) = route else { continue };
        let (set, shadow) = match overrides.is_empty() {
            true => (None, None),
            false => (overrides.get(&route.name), overrides.shadow(&route.name)),
        };
        let shadowed = shadow.map(|s| super::compile_mirror::with_shadow(route, s));
        let route: &RouteConfig = match &shadowed {
            Some(r) => r,
            None => route,
        };
        let origin = previous.and_then(|p| p.unchanged.route(i));
        // Carried over only with the weights it is compiled with now (a rollout step moves them
        // on an unchanged entry); compared without building them (most entries are carried).
        let same = previous
            .zip(origin)
            .and_then(|(p, j)| p.table.routes().get(j))
            .filter(|r| same_groups(route, r, group_ids) && same_weights(route, set, r));
        if let Some(r) = same {
            routes.push(r.clone());
            carried.routes.push(origin);
            continue;
        }
        let weights = match split_weights(route, set) {
            Ok(w) => w,
            Err(message) => {
                issues.push(Issue::new(format!("routes[{i}].split"), message));
                continue;
            }
        };
        if let Some(r) = compile_route(route, i, weights, group_ids, issues) {
            routes.push(Arc::new(r));
            carried.routes.push(None);
        }
    }
    routes
}

/// Whether a compiled route of the same entry still means the same thing: same name, and every
/// group it names has the id it had.
fn same_groups(cfg: &RouteConfig, old: &Route, group_ids: &HashMap<&str, usize>) -> bool {
    let id = |name: &String| group_ids.get(name.as_str()).copied();
    old.name.as_ref() == cfg.name.as_str()
        && cfg.split.len() == old.split.groups.len()
        && cfg
            .split
            .iter()
            .zip(&old.split.groups)
            .all(|(e, g)| id(&e.upstream) == Some(*g))
        && cfg.dye.tags.0.len() == old.dye.tags.len()
        && cfg
            .dye
            .tags
            .0
            .iter()
            .zip(&old.dye.tags)
            .all(|((tag, group), (old_tag, g))| {
                tag.as_str() == old_tag.as_ref() && id(group) == Some(*g)
            })
        && cfg.mirror.len() == old.mirror.len()
        && (cfg.mirror.iter()).zip(&old.mirror).all(|(m, o)| {
            // The share too: a shadow stage sets it over an unchanged entry.
            id(&m.upstream) == Some(o.group) && super::compile_mirror::share(m.percent) == o.share
        })
}

/// Whether `old` was compiled with the weights `cfg` is compiled with now (`set` by a rollout,
/// else the written ones).
fn same_weights(cfg: &RouteConfig, set: Option<&[u32]>, old: &Route) -> bool {
    match set {
        Some(w) => old.split.weights == w,
        None => (cfg.split.iter().map(|e| e.weight.0)).eq(old.split.weights.iter().copied()),
    }
}

/// The weights a route's split is compiled with: a running rollout's (`set`), else the
/// written ones.
fn split_weights(cfg: &RouteConfig, set: Option<&[u32]>) -> Result<Vec<u32>, String> {
    match set {
        None => Ok(cfg.split.iter().map(|e| e.weight.0).collect()),
        Some(w) if w.len() == cfg.split.len() => Ok(w.to_vec()),
        Some(w) => Err(format!(
            "found a rollout step of {} weights for a split of {} entries",
            w.len(),
            cfg.split.len()
        )),
    }
}

fn compile_route(
    cfg: &RouteConfig,
    index: usize,
    weights: Vec<u32>,
    group_ids: &HashMap<&str, usize>,
    issues: &mut Vec<Issue>,
) -> Option<Route> {
    let path = format!("routes[{index}]");
    let path = path.as_str();
    let before = issues.len();
    let matcher = super::compile_match::compile_match(&cfg.matches, path, issues);

    let dye = compile_dye(&cfg.dye, path, group_ids, issues);
    let limits =
        super::compile_limits::rate_limit(cfg.limits.as_ref(), &format!("{path}.limits"), issues);
    let mirror = super::compile_mirror::mirrors(&cfg.mirror, path, group_ids, issues);
    let sticky = match cfg.sticky.as_deref().map(str::trim) {
        None => None,
        Some(spec) => match parse_sticky(spec) {
            Some(k) => Some(k),
            None => {
                issues.push(Issue::new(
                    format!("{path}.sticky"),
                    format!("found {spec:?}, expected `header:NAME`, `cookie:NAME` or `client_ip`"),
                ));
                None
            }
        },
    };

    let groups: Vec<usize> = cfg
        .split
        .iter()
        .filter_map(|e| group_ids.get(e.upstream.as_str()).copied())
        .collect();
    if issues.len() > before || groups.len() != weights.len() {
        return None;
    }
    let smooth = SmoothWrr::new(&weights)?;
    let sticky = match sticky {
        Some(k) => Some((k, StickyRanges::new(&weights)?)),
        None => None,
    };
    Some(Route {
        name: cfg.name.as_str().into(),
        matcher,
        dye: dye?,
        split: Split {
            groups,
            weights,
            smooth,
            sticky,
        },
        timeouts: super::compile_containment::timeouts(&cfg.timeouts),
        retries: super::compile_containment::retries(&cfg.retries),
        limits,
        https_redirect: cfg.https_redirect,
        mirror,
    })
}

/// `routes[i].dye`: the tag header, tag → group, the policy for unknown tags, trusted networks.
fn compile_dye(
    cfg: &DyeConfig,
    path: &str,
    group_ids: &HashMap<&str, usize>,
    issues: &mut Vec<Issue>,
) -> Option<Dye> {
    let header = match HeaderName::from_bytes(cfg.header.trim().as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            issues.push(Issue::new(
                format!("{path}.dye.header"),
                format!(
                    "found {:?}, expected a valid HTTP header name such as x-env-tag",
                    cfg.header
                ),
            ));
            None
        }
    };
    let mut trusted = Vec::new();
    for (k, net) in cfg.trusted_sources.iter().flatten().enumerate() {
        match crate::config::networks::parse_net(net) {
            Some(n) => trusted.push(n),
            None => issues.push(Issue::new(
                format!("{path}.dye.trusted_sources[{k}]"),
                format!(
                    "found {net:?}, expected an IP network such as 10.0.0.0/8 or an IP address"
                ),
            )),
        }
    }
    // A tag that is no header value cannot pass validation; it is left out of both lists.
    let (tags, tag_values) = (cfg.tags.0.iter())
        .filter_map(|(tag, group)| {
            let value = HeaderValue::from_str(tag).ok()?;
            Some((
                (tag.as_str().into(), *group_ids.get(group.as_str())?),
                value,
            ))
        })
        .unzip();

    let from = super::compile_match::tag_sources(cfg.from.as_deref(), path, issues);
    let header = header?;
    Some(Dye {
        upstream: Box::new(DyeUpstream {
            header_case: Bytes::copy_from_slice((&header).into_case_header_name().as_slice()),
            tag_values,
        }),
        header,
        from,
        tags,
        on_unknown_tag: match cfg.on_unknown_tag {
            UnknownTagPolicy::Base => TagFallback::Base,
            UnknownTagPolicy::Reject => TagFallback::Reject,
        },
        on_unhealthy_tag: super::compile_containment::unhealthy_tag(cfg.on_unhealthy_tag),
        trusted: TrustedSources::new(trusted),
        limits: super::compile_limits::rate_limit(
            cfg.limits.as_ref(),
            &format!("{path}.dye.limits"),
            issues,
        ),
    })
}

fn parse_sticky(spec: &str) -> Option<StickyKey> {
    if spec == "client_ip" {
        return Some(StickyKey::ClientIp);
    }
    let (kind, name) = spec.split_once(':')?;
    let name = name.trim();
    match kind.trim() {
        "header" => HeaderName::from_bytes(name.as_bytes())
            .ok()
            .map(StickyKey::Header),
        "cookie" if super::compile_match::is_cookie_name(name) => {
            Some(StickyKey::Cookie(name.to_string()))
        }
        _ => None,
    }
}
