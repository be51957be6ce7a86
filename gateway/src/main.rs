//! The `dyegate` command line: subcommands only; the work is in the library.

use clap::{Parser, Subcommand};
use dyegate::config::{load_routes, ConfigErrors, Gateway};
use dyegate::server::{self, RunOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dyegate",
    version,
    about = "Edge gateway for canary releases, on Pingora"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve in the foreground (or as a daemon): SIGTERM stops gracefully, SIGINT at once.
    Run {
        /// gateway.yaml (default: ./gateway.yaml when it exists, else built-in defaults)
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Detach and run in the background (Pingora's daemon mode).
        #[arg(short = 'd', long)]
        daemon: bool,
        /// Take the listening sockets over from a running dyegate (binary upgrade).
        #[arg(short = 'u', long)]
        upgrade: bool,
    },
    /// Validate gateway.yaml and the routes file without serving.
    Check {
        /// gateway.yaml (default: ./gateway.yaml when it exists)
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Routes file to check instead of the one gateway.yaml names.
        routes: Option<PathBuf>,
    },
}

fn default_config(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| {
        let p = PathBuf::from("gateway.yaml");
        p.exists().then_some(p)
    })
}

fn print_errors(errors: &ConfigErrors, to_stdout: bool) {
    for e in &errors.0 {
        if to_stdout {
            println!("{e}");
        } else {
            eprintln!("{e}");
        }
    }
}

fn check(config: Option<PathBuf>, routes: Option<PathBuf>) -> ExitCode {
    let config = if routes.is_some() {
        config
    } else {
        default_config(config)
    };
    let mut errors = ConfigErrors(Vec::new());
    let routes_path = match &config {
        Some(c) => match Gateway::load(Some(c)) {
            Ok(gw) => Some(gw.routes_path),
            Err(e) => {
                errors.0.extend(e.0);
                None
            }
        },
        None => Some(PathBuf::from("routes.yaml")),
    };
    let routes_path = routes.or(routes_path);
    if let Some(path) = routes_path {
        match load_routes(&path) {
            Ok(loaded) if errors.0.is_empty() => {
                println!(
                    "OK: {} routes, {} upstreams",
                    loaded.routes, loaded.upstreams
                );
                return ExitCode::SUCCESS;
            }
            Ok(_) => {}
            Err(e) => errors.0.extend(e.0),
        }
    }
    print_errors(&errors, true);
    ExitCode::FAILURE
}

fn run(config: Option<PathBuf>, opts: RunOptions) -> ExitCode {
    let config = default_config(config);
    let gw = match Gateway::load(config.as_deref()) {
        Ok(gw) => gw,
        Err(e) => {
            print_errors(&e, false);
            eprintln!(
                "dyegate: not started: invalid {}",
                display(config.as_deref())
            );
            return ExitCode::FAILURE;
        }
    };
    let loaded = match load_routes(&gw.routes_path) {
        Ok(l) => l,
        Err(e) => {
            print_errors(&e, false);
            eprintln!("dyegate: not started: invalid {}", gw.routes_path.display());
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "loaded {}: {} routes, {} upstreams",
        gw.routes_path.display(),
        loaded.routes,
        loaded.upstreams
    );
    server::run(gw, loaded.table, opts)
}

fn display(p: Option<&Path>) -> String {
    p.map_or_else(|| "built-in defaults".into(), |p| p.display().to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config, routes } => check(config, routes),
        Command::Run {
            config,
            daemon,
            upgrade,
        } => {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .init();
            run(config, RunOptions { daemon, upgrade })
        }
    }
}
