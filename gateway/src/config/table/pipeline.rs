//! The routes pipeline: routes.yaml text to a validated, compiled table, every error of the file
//! located — size and depth first (`bounds`), a fast serde path for valid files that reuses a
//! previous version's unchanged entries (`incremental`), the located path for everything else —
//! with the weights running rollouts set over the decoded table (`SetOver`), and a running
//! version compiled again with other weights (`recompile`).

use super::{compile, compile_transport, incremental, model, validate};
use crate::config::bounds;
use crate::config::error::{ConfigError, ConfigErrors, Mark};
use crate::config::load::{self, Source};
use crate::routing::Overrides;
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
    /// What was set over `model` when `table` was compiled (rollout steps).
    pub overrides: Overrides,
}

impl LoadedRoutes {
    /// A compiled table and what it was compiled from (its counts taken from the table).
    fn of(
        table: Arc<RouteTable>,
        model: Arc<model::RoutesConfig>,
        text: Arc<str>,
        reuse: Option<incremental::Reuse>,
        carried: Carried,
        timings: Timings,
        overrides: Overrides,
    ) -> LoadedRoutes {
        LoadedRoutes {
            routes: table.routes().len(),
            upstreams: table.groups().len(),
            table,
            model,
            text,
            reuse,
            carried,
            timings,
            overrides,
        }
    }
}

/// What a trigger sets over a decoded model before it is compiled (the running rollouts'
/// steps), given the model once it decoded and validated. May be asked twice for one text (the
/// fast path gives up at compile and the located path compiles again): it must not act, only
/// answer.
pub type SetOver<'a> = &'a mut dyn FnMut(&model::RoutesConfig) -> Overrides;

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
    routes_from_text_over(file, bytes, previous, max_file_bytes, &mut |_| {
        Overrides::default()
    })
}

/// [`routes_from_text_within`] with weights set over the decoded model (see [`SetOver`]): the
/// text is read once, whatever is set over it.
pub fn routes_from_text_over(
    file: &str,
    bytes: Vec<u8>,
    previous: Option<&incremental::Reuse>,
    max_file_bytes: usize,
    over: SetOver<'_>,
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
    if let Some(mut loaded) = fast_path(&bytes, previous, &base, over) {
        loaded.timings.parse_us = (started.elapsed().as_micros() as u64)
            .saturating_sub(loaded.timings.validate_us + loaded.timings.compile_us);
        return Ok(loaded);
    }
    let source = Source::from_bytes(file.to_string(), bytes).map_err(ConfigErrors)?;
    let mut loaded = routes_from_source(source, &base, over)?;
    loaded.timings.parse_us = (started.elapsed().as_micros() as u64).saturating_sub(
        loaded.timings.decode_us + loaded.timings.validate_us + loaded.timings.compile_us,
    );
    Ok(loaded)
}

/// The common case, a valid file, decoded straight from text with serde_yaml (libyaml, several
/// times faster than building the located node tree), entry by entry when a previous version
/// can lend its unchanged entries. Any problem, even one serde_yaml would report, sends the file
/// down the located path, so every error message comes from one place.
pub(in crate::config) fn fast_path(
    bytes: &[u8],
    previous: Option<&incremental::Reuse>,
    base: &Path,
    over: SetOver<'_>,
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
    let overrides = over(&model);
    let t = std::time::Instant::now();
    let previous = match (previous, &unchanged) {
        (Some(prev), Some(unchanged)) => Some(compile::Previous {
            table: prev.table(),
            unchanged,
        }),
        _ => None,
    };
    let (table, carried) =
        compile::compile(&model, previous, Some(&names), base, &overrides).ok()?;
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
    Some(LoadedRoutes::of(
        table, model, text, reuse, carried, timings, overrides,
    ))
}

/// The running version's text and model compiled again with other weights set over it (a
/// rollout's step): nothing is read or decoded, and every entry but the routes whose weights
/// moved is carried over from `running`.
pub fn recompile(
    text: Arc<str>,
    model: Arc<model::RoutesConfig>,
    reuse: Option<&incremental::Reuse>,
    running: &RouteTable,
    file: &str,
    overrides: Overrides,
) -> Result<LoadedRoutes, ConfigErrors> {
    let mut timings = Timings::default();
    let t = std::time::Instant::now();
    // The same model: entry i of each list is entry i of the running table's.
    let unchanged = Carried {
        groups: (0..model.upstreams.len()).map(Some).collect(),
        routes: (0..model.routes.len()).map(Some).collect(),
    };
    let previous = compile::Previous {
        table: running,
        unchanged: &unchanged,
    };
    let base = compile_transport::base_dir(file);
    let (table, carried) = compile::compile(&model, Some(previous), None, &base, &overrides)
        .map_err(|issues| {
            ConfigErrors(
                (issues.into_iter())
                    .map(|i| ConfigError {
                        file: file.to_string(),
                        mark: Mark { line: 1, col: 1 },
                        path: i.path,
                        message: i.message,
                    })
                    .collect(),
            )
        })?;
    timings.compile_us = t.elapsed().as_micros() as u64;
    timings.reused = model.upstreams.len() + model.routes.len();
    let table = Arc::new(table);
    let reuse = reuse.map(|r| r.rebased(table.clone()));
    Ok(LoadedRoutes::of(
        table, model, text, reuse, carried, timings, overrides,
    ))
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

pub(in crate::config) fn routes_from_source(
    source: Source,
    base: &Path,
    over: SetOver<'_>,
) -> Result<LoadedRoutes, ConfigErrors> {
    let mut timings = Timings::default();
    let t = std::time::Instant::now();
    let (model, mut errors) = source.routes();
    timings.decode_us = t.elapsed().as_micros() as u64;
    let t = std::time::Instant::now();
    let mut issues = validate::validate(&model, None).0;
    timings.validate_us = t.elapsed().as_micros() as u64;
    // Set over a valid model only; an invalid one is compiled as written, for its issues.
    let overrides = match errors.is_empty() && issues.is_empty() {
        true => over(&model),
        false => Overrides::default(),
    };
    let t = std::time::Instant::now();
    let compiled = compile::compile(&model, None, None, base, &overrides).map(|(table, _)| table);
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
    Ok(LoadedRoutes::of(
        Arc::new(table),
        Arc::new(model),
        source.text.into(),
        None,
        Carried::default(),
        timings,
        overrides,
    ))
}
