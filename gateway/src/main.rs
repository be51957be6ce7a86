//! The `dyegate` command line: subcommands only; the work is in the library.

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use dyegate::cli::{self, AdminArgs};
use dyegate::config::schema::{schema_json, SchemaFile};
use dyegate::config::{diff::diff, load_routes, ConfigError, ConfigErrors, Gateway, Issue, Source};
use dyegate::lifecycle::listen_check::Purpose;
use dyegate::reload::{Overlay, Reloader, StartAt};
use dyegate::rollout::Controller;
use dyegate::server::{self, RunOptions};
use dyegate::source::fleet;
use dyegate::telemetry::Metrics;
use dyegate::tls::certificate::{rfc3339, EXPIRY_WARNING};
use dyegate::tls::{Certificates, TlsMetrics};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc as the global allocator (feature `mimalloc`, on by default): glibc malloc/free were
/// ~10% of a proxied request's CPU; see benches/load/README.md "Levers".
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Serve in the foreground (or as a daemon): SIGTERM stops gracefully, SIGINT at once,
    /// SIGHUP reloads routes.yaml.
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
        /// Also look up every DNS name of the targets (gateway.yaml `dns`): one that does not
        /// resolve now is an error.
        #[arg(long)]
        resolve: bool,
    },
    /// Print the semantic diff between two routes files (a preview before saving); either side
    /// may be `etcd:` (the fleet's table now) or `etcd:REV`.
    Diff {
        old: String,
        new: String,
        /// gateway.yaml with `source: { etcd: ... }` (for an `etcd:` side)
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Validate a routes file and write it to etcd as the fleet's table (one new revision).
    Push {
        routes: PathBuf,
        /// Allow a table with no routes (every request answered 404): marks it so in etcd, or
        /// the gateways refuse it.
        #[arg(long)]
        allow_empty: bool,
        /// gateway.yaml with `source: { etcd: ... }` (default: ./gateway.yaml)
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Write the fleet's table in etcd as one routes.yaml (stdout by default).
    Pull {
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// gateway.yaml with `source: { etcd: ... }` (default: ./gateway.yaml)
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Show the running version, whether it matches the file on disk, and the last error (how
    /// old, fixed since or not).
    Status(AdminArgs),
    /// Reload routes.yaml now (same pipeline as a file change or SIGHUP); a rejected file's
    /// errors are printed one per line, located, and the exit code is 1.
    Reload(AdminArgs),
    /// Swap back to a kept version (default: the previous one). The next reload applies the
    /// routes file again unless --write-file writes the version into it. With --fleet: write the
    /// table of etcd revision --to back as the fleet's new revision.
    Rollback {
        #[command(flatten)]
        admin: AdminArgs,
        /// Version to restore: N, or N.K for a local change kept on a gateway that follows etcd
        /// (with --fleet: the etcd revision)
        #[arg(long)]
        to: Option<dyegate::reload::VersionId>,
        /// Roll back the whole fleet in etcd instead of this gateway alone.
        #[arg(long, conflicts_with = "write_file")]
        fleet: bool,
        /// Also write the restored version into the routes file (atomically, same permissions),
        /// so that the next reload keeps it. Not for a gateway fed by etcd (use --fleet).
        #[arg(long)]
        write_file: bool,
    },
    /// List the kept versions; with N: print version N's source text.
    Versions {
        #[command(flatten)]
        admin: AdminArgs,
        /// A version (see the list): print its source
        #[arg(value_name = "N", value_parser = cli::args::version_id)]
        version: Option<dyegate::reload::VersionId>,
    },
    /// Every upstream group and target: health (healthy, unhealthy, ejected and until when),
    /// last check, requests in flight, failures.
    Upstreams(AdminArgs),
    /// Progressive delivery: `rollout [status] [ROUTE]` shows the rollouts (state, step, canary
    /// share, the window's figures, the gates); `rollout pause|resume|promote|abort ROUTE`
    /// moves one (`promote --to-end`: straight to the last step).
    Rollout {
        #[command(flatten)]
        admin: AdminArgs,
        /// status (default), pause, resume, promote or abort; or a route to show
        action: Option<String>,
        /// The route
        route: Option<String>,
        /// With promote: go to the last step at once.
        #[arg(long)]
        to_end: bool,
    },
    /// Replace the running dyegate with a new binary without dropping a connection.
    Upgrade {
        /// gateway.yaml of the running gateway (default: ./gateway.yaml)
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// The new binary (default: this one)
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Refuse a new binary whose sha256 differs (64 hex digits, as `sha256sum` prints): the
        /// file is read once and what runs is that read, from a private copy.
        #[arg(long, value_name = "HEX", value_parser = dyegate::upgrade::binary::sha256_hex)]
        expect_sha256: Option<[u8; 32]>,
        /// Wait for the old process to exit and report how long it drained.
        #[arg(long)]
        wait_old: bool,
        /// Longest wait for each step, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Print the JSON Schema (draft 2020-12) of routes.yaml or gateway.yaml, for editors and
    /// validators.
    Schema {
        #[arg(value_enum)]
        file: SchemaArg,
    },
    /// Print a shell completion script (bash: source it or put it in
    /// /usr/share/bash-completion/completions/dyegate).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page dyegate(1), or write one page per command into a directory.
    Man {
        /// Write dyegate.1 and dyegate-COMMAND.1 here instead of printing dyegate.1.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The files `dyegate schema` describes.
#[derive(Clone, Copy, ValueEnum)]
enum SchemaArg {
    Routes,
    Gateway,
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

fn check(config: Option<PathBuf>, routes: Option<PathBuf>, resolve: bool) -> ExitCode {
    let config = if routes.is_some() {
        config
    } else {
        default_config(config)
    };
    let mut errors = ConfigErrors(Vec::new());
    let mut max_file_bytes = dyegate::config::bounds::DEFAULT_MAX_FILE_BYTES;
    let mut dns = dyegate::config::DnsSettings::default();
    // `tls.certificates`: warnings (expiring soon), or the pairs that cannot be served.
    let mut certificates = Ok(Vec::new());
    let routes_path = match &config {
        Some(c) => match Gateway::load(Some(c)) {
            Ok(gw) => {
                certificates = check_certificates(&gw, c);
                if routes.is_none() && gw.etcd.is_some() {
                    if let Ok(warnings) = &certificates {
                        for w in warnings {
                            println!("{w}");
                        }
                        let prefix = gw.etcd.map(|e| e.prefix).unwrap_or_default();
                        println!("OK: {} (the routing table comes from etcd under {prefix}; `dyegate push FILE` checks a table before writing it)", c.display());
                        return ExitCode::SUCCESS;
                    }
                    None
                } else {
                    max_file_bytes = gw.config.reload.max_file_bytes;
                    dns = gw.dns.clone();
                    Some(gw.routes_path)
                }
            }
            Err(e) => {
                errors.0.extend(e.0);
                None
            }
        },
        None => Some(PathBuf::from("routes.yaml")),
    };
    let routes_path = routes.or(routes_path);
    let mut loaded = None;
    let mut unreachable = Vec::new();
    if let Some(path) = routes_path {
        match load_routes(&path, max_file_bytes) {
            Ok(l) => {
                unreachable = unreachable_routes(&path, &l);
                if resolve {
                    errors.0.extend(locate(
                        Some(&path),
                        dyegate::dns::startup::unresolved(&l.model, &dns),
                    ));
                }
                loaded = Some(l);
            }
            Err(e) => errors.0.extend(e.0),
        }
    }
    match (certificates, loaded) {
        (Ok(warnings), Some(loaded)) if errors.0.is_empty() => {
            for w in warnings.into_iter().chain(unreachable) {
                println!("{w}");
            }
            println!(
                "OK: {} routes, {} upstreams",
                loaded.routes, loaded.upstreams
            );
            ExitCode::SUCCESS
        }
        (certificates, _) => {
            errors.0.extend(certificates.err().unwrap_or_default());
            print_errors(&errors, true);
            ExitCode::FAILURE
        }
    }
}

/// `check`'s warnings about routes no request can reach (an earlier route matches every request
/// they would), located in the routes file.
fn unreachable_routes(
    path: &std::path::Path,
    loaded: &dyegate::config::LoadedRoutes,
) -> Vec<String> {
    let routes = loaded.table.routes();
    let source = Source::read(path).ok();
    (dyegate::routing::shadowed(routes).into_iter())
        .map(|s| {
            let issue = Issue::new(
                format!("routes[{}]", s.route),
                format!(
                    "route {} is unreachable: route {} (routes[{}]) above it matches every request it would; move it above, or narrow route {}",
                    routes[s.route].name, routes[s.by].name, s.by, routes[s.by].name
                ),
            );
            match &source {
                Some(src) => format!("warning: {}", src.locate(issue)),
                None => format!("warning: {}: {}: {}", path.display(), issue.path, issue.message),
            }
        })
        .collect()
}

fn diff_sides(old: &str, new: &str, config: Option<PathBuf>) -> ExitCode {
    let config = default_config(config);
    let side = |s: &str| fleet::side_model(config.as_deref(), s);
    let (a, b) = match (side(old), side(new)) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            for e in [a.err(), b.err()].into_iter().flatten() {
                println!("{e}");
            }
            return ExitCode::from(2);
        }
    };
    let d = diff(&a, &b);
    if d.is_empty() {
        println!("no changes");
    } else {
        for line in &d.lines {
            println!("{line}");
        }
        println!("{}", d.summary());
    }
    ExitCode::SUCCESS
}

/// Prints a fleet command's error and exits 1.
fn fleet_result(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
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
    let addrs = listen_addrs(&gw);
    if !opts.upgrade {
        let busy = dyegate::lifecycle::listen_check::busy(&addrs);
        if !busy.is_empty() {
            for b in &busy {
                eprintln!("dyegate: {b}");
            }
            eprintln!("dyegate: not started: {} address(es) unusable", busy.len());
            return ExitCode::FAILURE;
        }
    }
    let metrics = Metrics::new();
    let rollouts = Controller::new(&gw.state_dir, metrics.clone());
    let history = dyegate::reload::HistoryLimits {
        count: gw.config.reload.history,
        bytes: gw.config.reload.history_max_bytes,
    };
    let (loaded, start, etcd_read) = match &gw.etcd {
        Some(settings) => match dyegate::source::etcd::initial(settings, &gw.state_dir, history) {
            Ok(i) => {
                let start = StartAt {
                    version: Some(i.version),
                    trigger: i.trigger,
                    source: Some(i.status),
                };
                (i.loaded, start, i.read)
            }
            Err(e) => {
                eprintln!("dyegate: not started: {e}");
                return ExitCode::FAILURE;
            }
        },
        // The rollouts kept in state_dir write their steps into the file's text before it is
        // compiled: a restarted or upgraded gateway serves the step it was on.
        None => match std::fs::read(&gw.routes_path)
            .map_err(|e| {
                let file = gw.routes_path.display().to_string();
                ConfigErrors(vec![dyegate::config::load::unreadable(&file, &e)])
            })
            .and_then(|bytes| {
                let (bytes, _) = rollouts.overlay(bytes, "startup");
                dyegate::config::routes_from_text_within(
                    &gw.routes_path.display().to_string(),
                    bytes,
                    None,
                    gw.config.reload.max_file_bytes,
                )
            }) {
            Ok(l) => (l, StartAt::default(), None),
            Err(e) => {
                print_errors(&e, false);
                eprintln!("dyegate: not started: invalid {}", gw.routes_path.display());
                return ExitCode::FAILURE;
            }
        },
    };
    log::info!(
        "loaded {}: {} routes, {} upstreams",
        gw.etcd.as_ref().map_or_else(
            || gw.routes_path.display().to_string(),
            |e| format!("etcd:{}", e.prefix)
        ),
        loaded.routes,
        loaded.upstreams
    );
    let reloader = match Reloader::start(
        &gw.routes_path,
        loaded,
        start,
        &gw.state_dir,
        history,
        &gw.audit_log,
        metrics.clone(),
    ) {
        Ok(r) => Arc::new(r.with_max_file_bytes(gw.config.reload.max_file_bytes)),
        Err(e) => {
            eprintln!("dyegate: not started: {e}");
            return ExitCode::FAILURE;
        }
    };
    rollouts.attach(reloader.clone());
    // The table's DNS names are asked once before serving: a started or upgraded gateway
    // serves with their addresses (dns/startup.rs).
    let dns = Arc::new(dyegate::dns::DnsNames::new(gw.dns.interval));
    dyegate::dns::startup::resolve_at_start(
        &dns,
        &reloader.active().load().table,
        &gw.dns,
        metrics.dns(),
    );
    let certificates = match &gw.tls {
        None => None,
        Some(tls) => match Certificates::load(tls, TlsMetrics::new()) {
            Ok(c) => {
                metrics.register(c.metrics().collectors(c.table()));
                Some(Arc::new(c))
            }
            Err(issues) => {
                for e in locate(config.as_deref(), issues) {
                    eprintln!("{e}");
                }
                eprintln!("dyegate: not started: unusable certificates in tls:");
                return ExitCode::FAILURE;
            }
        },
    };
    log::info!(
        "dyegate {} {}: {}",
        env!("CARGO_PKG_VERSION"),
        if opts.upgrade {
            "taking over"
        } else {
            "listening"
        },
        (addrs.iter())
            .map(|(a, p)| {
                let proxied = gw.proxy_protocol.iter().any(|l| l.addr == *a);
                let suffix = if proxied { " (PROXY protocol)" } else { "" };
                format!("{} on {a}{suffix}", p.label())
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    server::run(
        gw,
        reloader,
        rollouts,
        metrics,
        opts,
        etcd_read,
        certificates,
        dns,
    )
}

/// Every address the process listens on, with what for.
fn listen_addrs(gw: &Gateway) -> Vec<(std::net::SocketAddr, Purpose)> {
    let mut out: Vec<_> = gw.listen.iter().map(|a| (*a, Purpose::Http)).collect();
    if let Some(tls) = &gw.tls {
        out.extend(tls.listen.iter().map(|a| (*a, Purpose::Https)));
    }
    out.push((gw.admin_listen, Purpose::Admin));
    out
}

/// Certificate errors located in gateway.yaml like every config error
/// (`gateway.yaml:LINE:COL: tls.certificates[0].key: found ..., expected ...`).
fn locate(file: Option<&Path>, issues: Vec<Issue>) -> Vec<ConfigError> {
    let source = file.and_then(|f| Source::read(f).ok());
    (issues.into_iter())
        .map(|i| match &source {
            Some(s) => s.locate(i),
            None => ConfigError {
                file: display(file),
                mark: Default::default(),
                path: i.path,
                message: i.message,
            },
        })
        .collect()
}

/// `dyegate check` of `tls.certificates`: every pair parses, matches and is valid now; a
/// certificate expiring within 14 days is a warning (printed, not a failure).
fn check_certificates(gw: &Gateway, file: &Path) -> Result<Vec<String>, Vec<ConfigError>> {
    let Some(tls) = &gw.tls else {
        return Ok(Vec::new());
    };
    let now = std::time::SystemTime::now();
    let soon = i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX);
    match dyegate::tls::certificates::load_all(tls, now) {
        Ok(certs) => Ok(certs
            .iter()
            .filter(|c| c.seconds_left(now) < soon)
            .map(|c| {
                format!(
                    "warning: {}: certificate {} expires in {} days, at {}",
                    c.paths.cert.display(),
                    c.name(),
                    c.seconds_left(now) / 86_400,
                    rfc3339(c.not_after)
                )
            })
            .collect()),
        Err(issues) => Err(locate(Some(file), issues)),
    }
}

/// What `dyegate schema`, `dyegate completions` and `dyegate man` print or write: generated
/// from the config types and from this command line, so they cannot drift from either.
enum Docs {
    Schema(SchemaArg),
    Completions(clap_complete::Shell),
    Man(Option<PathBuf>),
}

fn print_docs(docs: Docs) -> ExitCode {
    let mut stdout = std::io::stdout();
    let result = match docs {
        Docs::Schema(file) => {
            let file = match file {
                SchemaArg::Routes => SchemaFile::Routes,
                SchemaArg::Gateway => SchemaFile::Gateway,
            };
            std::io::Write::write_all(&mut stdout, schema_json(file).as_bytes())
        }
        Docs::Completions(shell) => {
            // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "dyegate", &mut script);
            std::io::Write::write_all(&mut stdout, &script)
        }
        Docs::Man(Some(dir)) => std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir)),
        Docs::Man(None) => clap_mangen::Man::new(Cli::command()).render(&mut stdout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dyegate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn display(p: Option<&Path>) -> String {
    p.map_or_else(|| "built-in defaults".into(), |p| p.display().to_string())
}

fn main() -> ExitCode {
    // SIGHUP's default action kills the process; until the reload service installs its handler
    // (dispositions survive Pingora's fork when daemonizing):
    // SAFETY: setting a signal disposition at startup, before any thread exists.
    // A SIGHUP that arrives before the reload service listens is remembered (not lost, not
    // fatal) and replayed by the service when it starts. SIGUSR1 (access log reopen) is ignored
    // until its handler is installed.
    dyegate::lifecycle::install_early_sighup_handler();
    unsafe {
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            config,
            routes,
            resolve,
        } => check(config, routes, resolve),
        Command::Diff { old, new, config } => diff_sides(&old, &new, config),
        Command::Schema { file } => print_docs(Docs::Schema(file)),
        Command::Completions { shell } => print_docs(Docs::Completions(shell)),
        Command::Man { dir } => print_docs(Docs::Man(dir)),
        Command::Push {
            routes,
            config,
            allow_empty,
        } => fleet_result(fleet::push(
            default_config(config).as_deref(),
            &routes,
            allow_empty,
        )),
        Command::Pull { output, config } => fleet_result(fleet::pull(
            default_config(config).as_deref(),
            output.as_deref(),
        )),
        Command::Status(a) => cli::commands::status(&a).into(),
        Command::Versions { admin, version } => cli::commands::versions(&admin, version).into(),
        Command::Upstreams(a) => cli::commands::upstreams(&a).into(),
        Command::Reload(a) => cli::commands::reload(&a).into(),
        Command::Rollout {
            admin,
            action,
            route,
            to_end,
        } => cli::commands::rollout(&admin, action.as_deref(), route.as_deref(), to_end).into(),
        Command::Rollback {
            admin,
            to,
            fleet: true,
            ..
        } => match to {
            Some(to) if to.is_local() => {
                eprintln!("dyegate rollback --fleet: --to {to} is a local change of one gateway, not an etcd revision (see dyegate versions)");
                ExitCode::from(2)
            }
            Some(to) => fleet_result(fleet::rollback(
                default_config(admin.config).as_deref(),
                to.version,
            )),
            None => {
                eprintln!(
                    "dyegate rollback --fleet: --to REVISION is required (see dyegate versions)"
                );
                ExitCode::from(2)
            }
        },
        Command::Rollback {
            admin,
            to,
            write_file,
            ..
        } => cli::commands::rollback(&admin, to, write_file).into(),
        Command::Upgrade {
            config,
            binary,
            expect_sha256,
            wait_old,
            timeout,
        } => dyegate::upgrade::command::cli(
            default_config(config),
            binary,
            expect_sha256,
            wait_old,
            std::time::Duration::from_secs(timeout),
        ),
        Command::Run {
            config,
            daemon,
            upgrade,
        } => {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .init();
            dyegate::upgrade::binary::close_inherited_copy();
            run(config, RunOptions { daemon, upgrade })
        }
    }
}
