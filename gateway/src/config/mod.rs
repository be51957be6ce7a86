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
}

/// Reads, validates and compiles a routes file. Every error of the file is returned.
pub fn load_routes(path: &Path) -> Result<LoadedRoutes, ConfigErrors> {
    let source = Source::read(path).map_err(ConfigErrors)?;
    routes_from_source(source)
}

/// Validates and compiles routes text already read (`file` names it in messages).
pub fn routes_from_text(file: &str, bytes: Vec<u8>) -> Result<LoadedRoutes, ConfigErrors> {
    let source = Source::from_bytes(file.to_string(), bytes).map_err(ConfigErrors)?;
    routes_from_source(source)
}

fn routes_from_source(source: Source) -> Result<LoadedRoutes, ConfigErrors> {
    let (model, mut errors) = source.routes();
    let mut issues = validate::validate(&model);
    let compiled = compile::compile(&model);
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
    })
}

#[cfg(test)]
mod tests;
