//! Configuration: `gateway.yaml` (static) and `routes.yaml` (dynamic), from text to a compiled
//! [`RouteTable`](crate::routing::RouteTable). The pipeline is visible in the module names:
//! `yaml` + `load` (text → model, located errors), `validate` (cross-field checks, all at once),
//! `compile` (model → typed table).

pub mod admin_tokens;
pub mod bounds;
pub mod compile;
pub mod compile_containment;
pub mod compile_limits;
pub mod compile_target;
pub mod compile_transport;
pub mod containment;
pub mod diff;
pub mod diff_split;
pub mod dns;
pub mod error;
pub mod forwarded;
pub mod gateway;
pub mod incremental;
pub mod limits;
pub mod listen;
pub mod live;
pub mod load;
pub mod model;
pub mod networks;
pub mod rollout;
pub mod runtime;
pub mod schema;
pub mod source;
pub mod tls;
pub mod tls_session;
pub mod tracing;
pub mod upgrade;
pub mod upstream_transport;
pub mod validate;
pub mod yaml;

pub use dns::DnsSettings;
pub use error::{ConfigError, ConfigErrors, Issue, Mark};
pub use gateway::Gateway;
pub use limits::{AdminLimits, DownstreamLimits};
pub use load::Source;
pub use source::EtcdSettings;
pub use tls::DownstreamTls;
pub use tracing::{ExportSettings, TracingSettings};

use crate::routing::{Carried, RouteTable};
use std::path::Path;
use std::sync::Arc;

/// A compiled routing table and what it was compiled from.
pub struct LoadedRoutes {
    pub table: Arc<RouteTable>,
    /// The decoded file, for diffs against the next version.
    pub model: Arc<model::RoutesConfig>,
    pub text: Arc<str>,
    /// What the next version can reuse of this one (see [`incremental`]); `None` when the file
    /// is not in the plain block layout.
    pub reuse: Option<incremental::Reuse>,
    /// Which routes and groups of `table` are the previous version's own, carried over.
    pub carried: Carried,
    pub routes: usize,
    pub upstreams: usize,
    pub timings: Timings,
}

/// Reads, validates and compiles a routes file of at most `max_file_bytes`
/// (`reload.max_file_bytes`). Every error of the file is returned.
pub fn load_routes(path: &Path, max_file_bytes: usize) -> Result<LoadedRoutes, ConfigErrors> {
    let file = path.display().to_string();
    let bytes = bounds::read(path, max_file_bytes).map_err(|e| ConfigErrors(vec![e]))?;
    routes_from_text_within(&file, bytes, None, max_file_bytes)
}

/// Validates and compiles routes text already read (`file` names it in messages), within the
/// default size limit ([`bounds::DEFAULT_MAX_FILE_BYTES`]). Every error of the file is returned.
///
/// `previous` is the running version when there is one: entries whose text is unchanged since
/// it are taken from it instead of being parsed, validated and compiled again (see
/// [`incremental`]); the result is the same as without it, only faster.
pub fn routes_from_text(
    file: &str,
    bytes: Vec<u8>,
    previous: Option<&incremental::Reuse>,
) -> Result<LoadedRoutes, ConfigErrors> {
    routes_from_text_within(file, bytes, previous, bounds::DEFAULT_MAX_FILE_BYTES)
}

/// [`routes_from_text`] with the size limit of gateway.yaml (`reload.max_file_bytes`). Every
/// reader of routes text ends here: size and nesting depth are checked first, in linear time,
/// before any YAML parser sees the text (see [`bounds`]).
pub fn routes_from_text_within(
    file: &str,
    bytes: Vec<u8>,
    previous: Option<&incremental::Reuse>,
    max_file_bytes: usize,
) -> Result<LoadedRoutes, ConfigErrors> {
    let one = |e| ConfigErrors(vec![e]);
    bounds::check_size(file, &bytes, max_file_bytes).map_err(one)?;
    // The root's shape is decided from a few KB, before any pass over the whole text.
    if let Some((at, found)) = bounds::not_a_mapping_root(&bytes) {
        return Err(one(ConfigError {
            file: file.to_string(),
            mark: bounds::mark_of_offset(&bytes, at),
            path: String::new(),
            message: format!("found {found}, expected a mapping with `upstreams` and `routes`"),
        }));
    }
    if std::str::from_utf8(&bytes).is_err() {
        // Not text: located where the first byte that is not UTF-8 is, before the depth scan
        // reads the whole of it.
        return Err(match Source::from_bytes(file.to_string(), bytes) {
            Err(errors) => ConfigErrors(errors),
            Ok(_) => one(ConfigError {
                file: file.to_string(),
                mark: Mark { line: 1, col: 1 },
                path: String::new(),
                message: "found a byte that is not UTF-8 text, expected a YAML text file".into(),
            }),
        });
    }
    bounds::check_depth(file, &bytes).map_err(one)?;
    let started = std::time::Instant::now();
    let base = compile_transport::base_dir(file);
    if let Some(mut loaded) = fast_path(&bytes, previous, &base) {
        loaded.timings.parse_us = (started.elapsed().as_micros() as u64)
            .saturating_sub(loaded.timings.validate_us + loaded.timings.compile_us);
        return Ok(loaded);
    }
    let source = Source::from_bytes(file.to_string(), bytes).map_err(ConfigErrors)?;
    let mut loaded = routes_from_source(source, &base)?;
    loaded.timings.parse_us = (started.elapsed().as_micros() as u64).saturating_sub(
        loaded.timings.decode_us + loaded.timings.validate_us + loaded.timings.compile_us,
    );
    Ok(loaded)
}

/// The common case, a valid file, decoded straight from text with serde_yaml (libyaml, several
/// times faster than building the located node tree), entry by entry when a previous version
/// can lend its unchanged entries. Any problem, even one serde_yaml would report, sends the file
/// down the located path, so every error message comes from one place.
fn fast_path(
    bytes: &[u8],
    previous: Option<&incremental::Reuse>,
    base: &Path,
) -> Option<LoadedRoutes> {
    let text = std::str::from_utf8(bytes).ok()?;
    if load::has_control_chars(text) {
        return None;
    }
    let mut timings = Timings::default();
    let cut = incremental::cut(text).map(|cut| {
        let keys = incremental::Keys::of(text, &cut);
        (cut, keys)
    });
    let incremental = match (previous, &cut) {
        (Some(prev), Some((cut, keys))) => prev.decode(text, cut, keys),
        _ => None,
    };
    // `unchanged` is `None` when the whole file was parsed.
    let (model, unchanged) = match incremental {
        Some((model, decoded)) => {
            timings.reused = decoded.reused;
            timings.parsed = decoded.parsed;
            (model, Some(decoded.unchanged))
        }
        None => {
            let file: model::RoutesFile = serde_yaml::from_str(text).ok()?;
            let model = model::RoutesConfig {
                upstreams: file
                    .upstreams
                    .0
                    .into_iter()
                    .map(|(n, u)| (n, Some(Arc::new(u))))
                    .collect(),
                routes: file.routes.into_iter().map(|r| Some(Arc::new(r))).collect(),
                failed: Vec::new(),
            };
            timings.parsed = model.upstreams.len() + model.routes.len();
            (model, None)
        }
    };
    let t = std::time::Instant::now();
    let (issues, names) = validate::validate(&model, unchanged.as_ref());
    if !issues.is_empty() {
        return None;
    }
    timings.validate_us = t.elapsed().as_micros() as u64;
    let t = std::time::Instant::now();
    let previous = match (previous, &unchanged) {
        (Some(prev), Some(unchanged)) => Some(compile::Previous {
            table: prev.table(),
            unchanged,
        }),
        _ => None,
    };
    let (table, carried) = compile::compile(&model, previous, Some(&names), base).ok()?;
    drop(names);
    let table = Arc::new(table);
    timings.compile_us = t.elapsed().as_micros() as u64;
    let text: Arc<str> = text.into();
    let model = Arc::new(model);
    let reuse = cut.and_then(|(cut, keys)| {
        incremental::Reuse::new(
            text.clone(),
            model.clone(),
            table.clone(),
            cut,
            keys,
            unchanged.is_some(),
        )
    });
    Some(LoadedRoutes {
        routes: table.routes().len(),
        upstreams: table.groups().len(),
        table,
        model,
        text,
        reuse,
        carried,
        timings,
    })
}

/// Where the time of a load goes, in microseconds (parse includes reading the YAML tree).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Timings {
    pub parse_us: u64,
    pub decode_us: u64,
    pub validate_us: u64,
    pub compile_us: u64,
    /// Top-level entries (routes and upstreams) taken unchanged from the previous version.
    pub reused: usize,
    /// Top-level entries parsed (the whole file when nothing could be reused).
    pub parsed: usize,
}

fn routes_from_source(source: Source, base: &Path) -> Result<LoadedRoutes, ConfigErrors> {
    let mut timings = Timings::default();
    let t = std::time::Instant::now();
    let (model, mut errors) = source.routes();
    timings.decode_us = t.elapsed().as_micros() as u64;
    let t = std::time::Instant::now();
    let mut issues = validate::validate(&model, None).0;
    timings.validate_us = t.elapsed().as_micros() as u64;
    let t = std::time::Instant::now();
    let compiled = compile::compile(&model, None, None, base).map(|(table, _)| table);
    timings.compile_us = t.elapsed().as_micros() as u64;
    let table = match compiled {
        Ok(table) if errors.is_empty() && issues.is_empty() => table,
        Ok(_) => RouteTable::default(),
        Err(more) => {
            issues.extend(more);
            RouteTable::default()
        }
    };
    errors.extend(
        issues
            .into_iter()
            .filter(|i| !model.is_consequence(&i.path))
            .map(|i| source.locate(i)),
    );
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.mark.line, e.mark.col));
        errors.dedup();
        return Err(ConfigErrors(errors));
    }
    Ok(LoadedRoutes {
        routes: table.routes().len(),
        upstreams: table.groups().len(),
        table: Arc::new(table),
        model: Arc::new(model),
        text: source.text.into(),
        reuse: None,
        carried: Carried::default(),
        timings,
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bounds;
#[cfg(test)]
mod tests_containment;
#[cfg(test)]
mod tests_files;
#[cfg(test)]
mod tests_forwarded;
#[cfg(test)]
mod tests_gateway;
#[cfg(test)]
mod tests_incremental;
#[cfg(test)]
mod tests_rollout;
#[cfg(test)]
mod tests_transport;
