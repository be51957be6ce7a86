//! gateway.yaml's `log:` the level of the process's own log lines (stderr, or
//! `pingora.error_log`). `RUST_LOG`, when set, decides instead (see `telemetry::log_level`).

use schemars::JsonSchema;
use serde::Deserialize;

/// `log:` as written in gateway.yaml.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The most verbose level written: `error`, `warn`, `info`, `debug` or `trace` [info].
    /// Applied live on SIGHUP; ignored while `RUST_LOG` is set (it decides at start).
    #[serde(default)]
    pub level: LogLevel,
}

/// A log level, as written.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The `log` crate's filter for it.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }

    /// As written in gateway.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LogLevel;
    use crate::config::settings::tests_files::load_gateway;

    fn errors(text: &str) -> String {
        load_gateway(text)
            .err()
            .unwrap_or_else(|| String::from("ok"))
    }

    #[test]
    fn the_level_defaults_to_info_and_every_level_reads() {
        let gw = load_gateway("listen: [\"127.0.0.1:8080\"]\n").expect("valid");
        assert_eq!(gw.config.log.level, LogLevel::Info);
        for (text, level, filter) in [
            ("error", LogLevel::Error, log::LevelFilter::Error),
            ("warn", LogLevel::Warn, log::LevelFilter::Warn),
            ("info", LogLevel::Info, log::LevelFilter::Info),
            ("debug", LogLevel::Debug, log::LevelFilter::Debug),
            ("trace", LogLevel::Trace, log::LevelFilter::Trace),
        ] {
            let gw = load_gateway(&format!("log: {{ level: {text} }}\n")).expect(text);
            assert_eq!(gw.config.log.level, level);
            assert_eq!(level.filter(), filter);
            assert_eq!(level.as_str(), text);
        }
    }

    #[test]
    fn a_wrong_level_or_field_is_located() {
        assert_eq!(
            errors("log:\n  level: verbose\n"),
            "gateway.yaml:2:10: log.level: found \"verbose\", expected one of `error`, `warn`, `info`, `debug`, `trace`"
        );
        assert_eq!(
            errors("log: { levle: debug }\n"),
            "gateway.yaml:1:8: log.levle: found unknown field `levle`, expected `level`"
        );
        assert_eq!(
            errors("log: debug\n"),
            "gateway.yaml:1:6: log: found \"debug\", expected a mapping with fields `level`"
        );
    }
}
