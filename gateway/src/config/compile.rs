//! Validated config model to [`RouteTable`]: the only place strings become header names, socket
//! addresses, networks and weights. Every conversion failure is collected as an [`Issue`].

use super::error::Issue;
use super::incremental::Origins;
use super::model::{MatchConfig, RouteConfig, RoutesConfig};
use crate::routing::{
    Carried, Dye, Group, HostMatch, Matcher, Route, RouteTable, Split, StickyKey, Target,
};
use dyegate_plugins::{SmoothWrr, StickyRanges, TrustedSources};
use foldhash::{HashMap, HashMapExt};
use http::{HeaderName, HeaderValue, Method};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What a reload can carry over from the running table: its entries whose text is unchanged.
pub struct Previous<'a> {
    pub table: &'a RouteTable,
    pub origins: &'a Origins,
}

/// Compiles a routes file. Returns every issue found when any conversion fails.
pub fn compile(cfg: &RoutesConfig) -> Result<RouteTable, Vec<Issue>> {
    compile_after(cfg, None, None).map(|(table, _)| table)
}

/// [`compile`], carrying over from `previous` every group and route whose entry is unchanged (a
/// route only when its groups keep their ids): the same `Arc`, round-robin position included.
/// Also says which were carried over, and from where. `names` (from validation: each upstream
/// name's first index) saves building the name → group id map again when every name is unique.
pub fn compile_after<'a>(
    cfg: &'a RoutesConfig,
    previous: Option<Previous<'_>>,
    names: Option<&HashMap<&'a str, usize>>,
) -> Result<(RouteTable, Carried), Vec<Issue>> {
    let mut carried = Carried::default();
    let mut issues = Vec::new();
    let mut groups = Vec::with_capacity(cfg.upstreams.len());
    // Unique names, every entry decoded: upstream i becomes group i, as `names` says.
    let given = names.filter(|n| {
        n.len() == cfg.upstreams.len() && cfg.upstreams.iter().all(|(_, u)| u.is_some())
    });
    let mut own: HashMap<&str, usize> = HashMap::with_capacity(if given.is_some() {
        0
    } else {
        cfg.upstreams.len()
    });
    for (i, (name, up)) in cfg.upstreams.iter().enumerate() {
        let Some(up) = up else { continue };
        let origin = previous.as_ref().and_then(|p| *p.origins.upstreams.get(i)?);
        let same = previous
            .as_ref()
            .zip(origin)
            .and_then(|(p, j)| p.table.groups().get(j))
            .filter(|g| {
                g.name.as_ref() == name.as_str()
                    && (given.is_some() || !own.contains_key(name.as_str()))
            });
        if let Some(g) = same {
            if given.is_none() {
                own.insert(name, groups.len());
            }
            groups.push(g.clone());
            carried.groups.push(origin);
            continue;
        }
        // Paths are built only for an issue: this runs on every reload of every entry.
        let path = || format!("upstreams.{name}");
        let mut targets = Vec::with_capacity(up.targets.len());
        for (j, t) in up.targets.iter().enumerate() {
            match parse_target(&t.addr) {
                Ok(addr) => targets.push(Target {
                    addr,
                    weight: t.weight.0,
                }),
                Err(msg) => issues.push(Issue::new(format!("{}.targets[{j}]", path()), msg)),
            }
        }
        if given.is_none() && own.contains_key(name.as_str()) {
            issues.push(Issue::new(
                path(),
                format!("found upstream {name:?} twice, expected unique names"),
            ));
            continue;
        }
        let policy = super::compile_containment::group_policy(up, &path, &mut issues);
        if let Some(g) = Group::new(name, targets).map(|g| g.with_policy(policy)) {
            if given.is_none() {
                own.insert(name, groups.len());
            }
            groups.push(Arc::new(g));
            carried.groups.push(None);
        }
    }
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

    let mut routes = Vec::with_capacity(cfg.routes.len());
    for (i, route) in cfg.routes.iter().enumerate() {
        let Some(route) = route else { continue };
        let origin = previous.as_ref().and_then(|p| *p.origins.routes.get(i)?);
        let same = previous
            .as_ref()
            .zip(origin)
            .and_then(|(p, j)| p.table.routes().get(j))
            .filter(|r| same_groups(route, r, group_ids));
        if let Some(r) = same {
            routes.push(r.clone());
            carried.routes.push(origin);
            continue;
        }
        if let Some(r) = compile_route(route, i, group_ids, &mut issues) {
            routes.push(Arc::new(r));
            carried.routes.push(None);
        }
    }
    if issues.is_empty() && routes.len() == cfg.routes.len() {
        Ok((RouteTable::new(routes, groups), carried))
    } else {
        Err(issues)
    }
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
}

fn parse_target(addr: &str) -> Result<SocketAddr, String> {
    match addr.trim().parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(a),
        Ok(_) => Err(format!("found {addr:?} with port 0, expected a port from 1 to 65535")),
        Err(_) => Err(format!(
            "found {addr:?}, expected an IP:PORT socket address such as 127.0.0.1:9001 or [::1]:9001"
        )),
    }
}

fn compile_route(
    cfg: &RouteConfig,
    index: usize,
    group_ids: &HashMap<&str, usize>,
    issues: &mut Vec<Issue>,
) -> Option<Route> {
    let path = format!("routes[{index}]");
    let path = path.as_str();
    let before = issues.len();
    let matcher = compile_match(&cfg.matches, path, issues);

    let header = match HeaderName::from_bytes(cfg.dye.header.trim().as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            issues.push(Issue::new(
                format!("{path}.dye.header"),
                format!(
                    "found {:?}, expected a valid HTTP header name such as x-env-tag",
                    cfg.dye.header
                ),
            ));
            None
        }
    };
    let mut trusted = Vec::new();
    for (k, net) in cfg.dye.trusted_sources.iter().flatten().enumerate() {
        match parse_net(net) {
            Some(n) => trusted.push(n),
            None => issues.push(Issue::new(
                format!("{path}.dye.trusted_sources[{k}]"),
                format!(
                    "found {net:?}, expected an IP network such as 10.0.0.0/8 or an IP address"
                ),
            )),
        }
    }
    let tags = cfg
        .dye
        .tags
        .0
        .iter()
        .filter_map(|(tag, group)| Some((tag.as_str().into(), *group_ids.get(group.as_str())?)))
        .collect();

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
    let weights: Vec<u32> = cfg.split.iter().map(|e| e.weight.0).collect();
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
        dye: Dye {
            header: header?,
            tags,
            on_unknown_tag: cfg.dye.on_unknown_tag,
            on_unhealthy_tag: super::compile_containment::unhealthy_tag(cfg.dye.on_unhealthy_tag),
            trusted: TrustedSources::new(trusted),
        },
        split: Split {
            groups,
            weights,
            smooth,
            sticky,
        },
        timeouts: super::compile_containment::timeouts(&cfg.timeouts),
        retries: super::compile_containment::retries(&cfg.retries),
    })
}

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
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
        "cookie" if is_cookie_name(name) => Some(StickyKey::Cookie(name.to_string())),
        _ => None,
    }
}

/// RFC 6265 cookie-name: an HTTP token.
fn is_cookie_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn compile_match(cfg: &MatchConfig, route: &str, issues: &mut Vec<Issue>) -> Matcher {
    let path = format_args!("{route}.match");
    let mut m = Matcher::default();
    if let Some(host) = &cfg.host {
        match parse_host(host) {
            Some(h) => m.host = Some(h),
            None => issues.push(Issue::new(
                format!("{path}.host"),
                format!("found {host:?}, expected a host name such as shop.example.com or *.example.com"),
            )),
        }
    }
    if let Some(p) = &cfg.path_prefix {
        if p.starts_with('/')
            && !p
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            m.path_prefix = Some(p.clone());
        } else {
            issues.push(Issue::new(
                format!("{path}.path_prefix"),
                format!("found {p:?}, expected a path starting with / such as /api"),
            ));
        }
    }
    if let Some(methods) = &cfg.methods {
        let mut out = Vec::new();
        for (k, name) in methods.iter().enumerate() {
            let upper = name.trim().to_ascii_uppercase();
            match Method::from_bytes(upper.as_bytes()) {
                Ok(meth) if !upper.is_empty() => out.push(meth),
                _ => issues.push(Issue::new(
                    format!("{path}.methods[{k}]"),
                    format!("found {name:?}, expected an HTTP method such as GET or POST"),
                )),
            }
        }
        if methods.is_empty() {
            issues.push(Issue::new(
                format!("{path}.methods"),
                "found an empty list, expected at least one method (omit the field to match any)",
            ));
        }
        m.methods = Some(out);
    }
    for (name, values) in &cfg.headers.0 {
        let hpath = || format!("{path}.headers.{name}");
        let Ok(h) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            issues.push(Issue::new(
                hpath(),
                format!("found {name:?}, expected a valid HTTP header name"),
            ));
            continue;
        };
        let mut vals = Vec::new();
        for (k, v) in values.0.iter().enumerate() {
            match HeaderValue::from_str(v) {
                Ok(v) => vals.push(v),
                Err(_) => issues.push(Issue::new(
                    format!("{}[{k}]", hpath()),
                    format!("found {v:?}, expected a valid HTTP header value"),
                )),
            }
        }
        if values.0.is_empty() {
            issues.push(Issue::new(
                hpath(),
                "found an empty list, expected at least one allowed value",
            ));
        }
        m.headers.push((h, vals));
    }
    m
}

/// `shop.example.com` or `*.example.com`, lower-cased.
fn parse_host(h: &str) -> Option<HostMatch> {
    let h = h.trim().to_ascii_lowercase();
    let h = h.strip_suffix('.').unwrap_or(&h);
    let (wild, name) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h),
    };
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return None;
    }
    Some(if wild {
        HostMatch::Suffix(format!(".{name}"))
    } else {
        HostMatch::Exact(name.to_string())
    })
}
