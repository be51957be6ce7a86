//! Configuration: `gateway.yaml` (static) and `routes.yaml` (dynamic), from text to a compiled
//! [`RouteTable`](crate::routing::RouteTable). The pipeline is visible in the module names:
//! `yaml` + `load` (text → model, located errors), `validate` (cross-field checks, all at once),
//! `compile` (model → typed table).

pub mod compile;
pub mod diff;
pub mod error;
pub mod gateway;
pub mod load;
pub mod model;
pub mod tracing;
pub mod validate;
pub mod yaml;

pub use error::{ConfigError, ConfigErrors, Issue, Mark};
pub use gateway::Gateway;
pub use load::Source;
pub use tracing::{ExportSettings, TracingSettings};

use crate::routing::RouteTable;
use std::path::Path;

/// A compiled routing table and what it was compiled from.
pub struct LoadedRoutes {
    pub table: RouteTable,
    /// The decoded file, for diffs against the next version.
    pub model: model::RoutesConfig,
    pub text: String,
    pub routes: usize,
    pub upstreams: usize,
    pub timings: Timings,
}

/// Reads, validates and compiles a routes file. Every error of the file is returned.
pub fn load_routes(path: &Path) -> Result<LoadedRoutes, ConfigErrors> {
    let source = Source::read(path).map_err(ConfigErrors)?;
    routes_from_source(source)
}

/// Validates and compiles routes text already read (`file` names it in messages).
pub fn routes_from_text(file: &str, bytes: Vec<u8>) -> Result<LoadedRoutes, ConfigErrors> {
    let started = std::time::Instant::now();
    if let Some(mut loaded) = fast_path(&bytes) {
        loaded.timings.parse_us = started.elapsed().as_micros() as u64
            - loaded.timings.validate_us
            - loaded.timings.compile_us;
        return Ok(loaded);
    }
    let source = Source::from_bytes(file.to_string(), bytes).map_err(ConfigErrors)?;
    let mut loaded = routes_from_source(source)?;
    loaded.timings.parse_us = started.elapsed().as_micros() as u64
        - loaded.timings.decode_us
        - loaded.timings.validate_us
        - loaded.timings.compile_us;
    Ok(loaded)
}

/// The common case, a valid file, decoded straight from text with serde_yaml (libyaml, several
/// times faster than building the located node tree). Any problem, even one serde_yaml would
/// report, sends the file down the located path, so every error message comes from one place.
fn fast_path(bytes: &[u8]) -> Option<LoadedRoutes> {
    let text = std::str::from_utf8(bytes).ok()?;
    if load::has_control_chars(text) {
        return None;
    }
    let file: model::RoutesFile = serde_yaml::from_str(text).ok()?;
    let model = model::RoutesConfig {
        upstreams: file
            .upstreams
            .0
            .into_iter()
            .map(|(n, u)| (n, Some(u)))
            .collect(),
        routes: file.routes.into_iter().map(Some).collect(),
        failed: Vec::new(),
    };
    let mut timings = Timings::default();
    let t = std::time::Instant::now();
    if !validate::validate(&model).is_empty() {
        return None;
    }
    timings.validate_us = t.elapsed().as_micros() as u64;
    let t = std::time::Instant::now();
    let table = compile::compile(&model).ok()?;
    timings.compile_us = t.elapsed().as_micros() as u64;
    Some(LoadedRoutes {
        routes: table.routes().len(),
        upstreams: table.groups().len(),
        table,
        model,
        text: text.to_string(),
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
}

fn routes_from_source(source: Source) -> Result<LoadedRoutes, ConfigErrors> {
    let mut timings = Timings::default();
    let t = std::time::Instant::now();
    let (model, mut errors) = source.routes();
    timings.decode_us = t.elapsed().as_micros() as u64;
    let t = std::time::Instant::now();
    let mut issues = validate::validate(&model);
    timings.validate_us = t.elapsed().as_micros() as u64;
    let t = std::time::Instant::now();
    let compiled = compile::compile(&model);
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
        table,
        model,
        text: source.text,
        timings,
    })
}

#[cfg(test)]
mod tests;
