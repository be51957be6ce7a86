//! Who decides the level of dyegate's own log lines, and gateway.yaml `log.level` applied live.
//!
//! The logger (env_logger, on stderr) is installed once, at start. With `RUST_LOG` set, its
//! directives are the filter, per module included, for the whole life of the process, and
//! `log.level` is ignored (said in the log at start and on every reload that changes it).
//! Without it, the logger's own filter lets every level of every module through, and the level
//! is the `log` crate's global maximum (`log::set_max_level`), which every log macro checks
//! first: a SIGHUP moves it without swapping the logger (env_logger's filter cannot change once
//! installed), and a line above it costs one atomic load. The choice this makes: `log.level:
//! debug` shows the debug lines of every crate (Pingora, hickory, rustls), as `RUST_LOG=debug`
//! does; a filter per module needs `RUST_LOG`.

use crate::config::settings::logging::LogLevel;

/// What decides the level of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelSource {
    /// `RUST_LOG`, read once at start.
    Env,
    /// gateway.yaml `log.level`, applied at start and on every reload.
    Config,
}

impl LevelSource {
    /// `RUST_LOG`'s value decides when it has any directive.
    pub fn of(rust_log: Option<&str>) -> LevelSource {
        match rust_log.map(str::trim) {
            Some(v) if !v.is_empty() => LevelSource::Env,
            _ => LevelSource::Config,
        }
    }

    /// This process's: from its environment (which it never changes).
    pub fn from_env() -> LevelSource {
        LevelSource::of(std::env::var("RUST_LOG").ok().as_deref())
    }

    /// Installs the logger, at `info` until gateway.yaml is read ([`Self::at_start`]).
    pub fn install() -> LevelSource {
        let source = LevelSource::from_env();
        match source {
            LevelSource::Env => env_logger::Builder::from_env(env_logger::Env::default()).init(),
            LevelSource::Config => {
                env_logger::Builder::new()
                    .filter_level(log::LevelFilter::Trace)
                    .init();
                log::set_max_level(log::LevelFilter::Info);
            }
        }
        source
    }

    /// gateway.yaml's level as the process starts: applied, or named as ignored.
    pub fn at_start(self, level: LogLevel) {
        if !self.apply(level) {
            log::info!(
                "RUST_LOG is set and decides the log level: gateway.yaml log.level ({}) is ignored",
                level.as_str()
            );
        }
    }

    /// Applies `level` when gateway.yaml decides; `false` when `RUST_LOG` does (nothing done).
    pub fn apply(self, level: LogLevel) -> bool {
        match self {
            LevelSource::Env => false,
            LevelSource::Config => {
                log::set_max_level(level.filter());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LevelSource;

    #[test]
    fn rust_log_decides_only_when_it_says_something() {
        assert_eq!(LevelSource::of(None), LevelSource::Config);
        assert_eq!(LevelSource::of(Some("")), LevelSource::Config);
        assert_eq!(LevelSource::of(Some("  ")), LevelSource::Config);
        assert_eq!(LevelSource::of(Some("info")), LevelSource::Env);
        assert_eq!(
            LevelSource::of(Some("dyegate=debug,pingora=warn")),
            LevelSource::Env
        );
        // Env decides: gateway.yaml's level is not applied.
        assert!(!LevelSource::Env.apply(crate::config::settings::logging::LogLevel::Trace));
    }
}
