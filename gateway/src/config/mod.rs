//! Configuration in two rooms: [`settings`], the process settings of `gateway.yaml`, and
//! [`table`], the routing table of `routes.yaml`, from text to a compiled
//! [`RouteTable`](crate::routing::RouteTable). What both read is here: `yaml` + `load` (text →
//! model, located errors), `bounds` (what a text may cost), `range` (numeric bounds, one
//! wording), `entries`, `networks`, `error`, `schema`. The routes pipeline is `table::pipeline`,
//! re-exported here under the names every caller uses.

pub mod bounds;
pub mod entries;
pub mod error;
pub mod load;
pub mod networks;
pub mod range;
pub mod schema;
pub mod settings;
pub mod table;
pub mod yaml;

pub use crate::routing::Overrides;
pub use table::incremental;
#[cfg(test)]
use table::pipeline::{fast_path, routes_from_source};
pub use table::pipeline::{
    load_routes, recompile, routes_from_text, routes_from_text_over, routes_from_text_within,
    LoadedRoutes, SetOver, Timings,
};
// Short paths for the names the rest of the crate uses most (each module's own path also works).
pub use settings::limits;
pub use table::{compile_target, diff, rollout, validate};
/// Both files' models under their old path (see the note above).
pub mod model {
    pub use super::entries::Entries;
    pub use super::settings::model::GatewayConfig;
    pub use super::table::model::{
        RouteConfig, RoutesConfig, RoutesFile, UpstreamConfig, MAX_WEIGHT,
    };
}

pub use error::{ConfigError, ConfigErrors, Issue, Mark};
pub use load::Source;
pub use settings::dns::DnsSettings;
pub use settings::gateway::Gateway;
pub use settings::limits::{AdminLimits, DownstreamLimits};
pub use settings::source::EtcdSettings;
pub use settings::tls::DownstreamTls;
pub use settings::tracing::{ExportSettings, TracingSettings};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bounds;
#[cfg(test)]
mod tests_incremental;
