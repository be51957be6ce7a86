//! The `dyegate` command line: subcommands only; the work is in the library.

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use dyegate::cli::args::default_config;
use dyegate::cli::check::{check, display, locate, print_errors};
use dyegate::cli::{self, AdminArgs};
use dyegate::config::schema::{schema_json, SchemaFile};
use dyegate::config::table::diff::diff;
use dyegate::config::{ConfigErrors, Gateway, LoadedRoutes};
use dyegate::lifecycle::listen_check::Purpose;
use dyegate::reload::{Overlay, Reloader, StartAt};
use dyegate::rollout::Controller;
use dyegate::server::{self, RunOptions};
use dyegate::source::fleet;
use dyegate::telemetry::Metrics;
use dyegate::tls::{Certificates, TlsMetrics};
use std::convert::Infallible;
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
    /// Which route and tag a request would get, and why (per route tried, the condition that
    /// held or failed), without sending it: asks the running gateway (POST /explain), or with
    /// --file decides on a routes file (default: the one gateway.yaml names).
    Explain {
        #[command(flatten)]
        admin: AdminArgs,
        /// http://HOST[:PORT]/PATH?QUERY (or /PATH with --header host:NAME)
        url: String,
        /// The method [GET]
        #[arg(short = 'X', long)]
        method: Option<String>,
        /// A header NAME:VALUE (repeatable)
        #[arg(short = 'H', long = "header", value_name = "NAME:VALUE")]
        headers: Vec<String>,
        /// A cookie NAME=VALUE (repeatable)
        #[arg(long = "cookie", value_name = "NAME=VALUE")]
        cookies: Vec<String>,
        /// A query parameter NAME=VALUE, appended to the URL's query (repeatable)
        #[arg(long = "query", value_name = "NAME=VALUE")]
        query: Vec<String>,
        /// The client address (as the proxy finds it: PROXY source, peer, or forwarded)
        #[arg(long, value_name = "ADDR")]
        ip: Option<String>,
        /// Decide on this routes file instead of asking the gateway (no value: the routes
        /// file gateway.yaml names); every target counts as healthy
        #[arg(long, value_name = "ROUTES", num_args = 0..=1, default_missing_value = "")]
        file: Option<PathBuf>,
    },
    /// Every upstream group and target: health (healthy, unhealthy, ejected and until when),
    /// last check, requests in flight, failures.
    Upstreams(AdminArgs),
    /// Shadow traffic: per route and shadow group, the copies by outcome and the last
    /// mismatches (statuses, body lengths, latencies, differing header names, trace id).
    Mirrors {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only this route
        route: Option<String>,
    },
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

/// Why `dyegate run` did not start, already printed.
struct NotStarted;

fn run(
    config: Option<PathBuf>,
    opts: RunOptions,
    log_level: dyegate::telemetry::log_level::LevelSource,
) -> ExitCode {
    match serve(default_config(config), opts, log_level) {
        Ok(never) => match never {},
        Err(NotStarted) => ExitCode::FAILURE,
    }
}

/// `dyegate run`, step by step, each refusing to start with its reason: gateway.yaml; the
/// listen addresses free (unless taking them over); the first table, from etcd or the routes
/// file ([`first_table`]); the reloader; the table's DNS names asked once; the certificates of
/// the HTTPS listeners. Then the server runs until it is told to stop.
fn serve(
    config: Option<PathBuf>,
    opts: RunOptions,
    log_level: dyegate::telemetry::log_level::LevelSource,
) -> Result<Infallible, NotStarted> {
    let gw = Gateway::load(config.as_deref()).map_err(|e| {
        print_errors(&e, false);
        eprintln!(
            "dyegate: not started: invalid {}",
            display(config.as_deref())
        );
        NotStarted
    })?;
    log_level.at_start(gw.log_level());
    let addrs = listen_addrs(&gw);
    if !opts.upgrade {
        addresses_free(&addrs)?;
    }
    let metrics = Metrics::new();
    // On a gateway that follows etcd the rollouts are the fleet's (state in etcd, one driver).
    let rollouts = match &gw.etcd {
        Some(settings) => {
            let view = dyegate::rollout::fleet::FleetView::new(&settings.gateway_id);
            Controller::in_fleet(&gw.state_dir, metrics.clone(), view)
        }
        None => Controller::new(&gw.state_dir, metrics.clone()),
    };
    let history = dyegate::reload::HistoryLimits {
        count: gw.reload.history,
        bytes: gw.reload.history_max_bytes,
    };
    let (loaded, start, etcd_read) = first_table(&gw, &rollouts, history)?;
    let reloader = Reloader::start(
        &gw.routes_path,
        loaded,
        start,
        &gw.state_dir,
        history,
        &gw.audit_log,
        metrics.clone(),
    )
    .map_err(|e| {
        eprintln!("dyegate: not started: {e}");
        NotStarted
    })?;
    // The table's DNS names: asked once before serving (dns/startup.rs), and those a reload
    // brings asked before it commits (dns/prefetch.rs).
    let dns = Arc::new(dyegate::dns::DnsNames::new(gw.dns.interval));
    let prefetch = dyegate::dns::Prefetch::new(dns.clone(), gw.dns.clone(), metrics.dns().clone());
    let reloader = Arc::new(
        reloader
            .with_max_file_bytes(gw.reload.max_file_bytes)
            .with_overlay(rollouts.clone())
            .with_prefetch(prefetch),
    );
    // A started or upgraded gateway serves with the addresses of its names.
    dyegate::dns::startup::resolve_at_start(
        &dns,
        &reloader.active().load().table,
        &gw.dns,
        metrics.dns(),
    );
    let certificates = certificates(&gw, config.as_deref(), &metrics)?;
    log_listening(&gw, &addrs, opts);
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

/// Every listen address free to bind, or each one that is not, printed.
fn addresses_free(addrs: &[(std::net::SocketAddr, Purpose)]) -> Result<(), NotStarted> {
    let busy = dyegate::lifecycle::listen_check::busy(addrs);
    if busy.is_empty() {
        return Ok(());
    }
    for b in &busy {
        eprintln!("dyegate: {b}");
    }
    eprintln!("dyegate: not started: {} address(es) unusable", busy.len());
    Err(NotStarted)
}

/// The table to start with, where to start the history, and (from etcd) where its read left off.
type FirstTable = (LoadedRoutes, StartAt, Option<(u64, String)>);

/// The first table: from etcd (with the version it had), or the routes file with the steps of
/// the rollouts kept in state_dir, so a restarted or upgraded gateway serves the step it was on.
fn first_table(
    gw: &Gateway,
    rollouts: &Controller,
    history: dyegate::reload::HistoryLimits,
) -> Result<FirstTable, NotStarted> {
    let loaded = match &gw.etcd {
        Some(settings) => match dyegate::source::etcd::initial(settings, &gw.state_dir, history) {
            Ok(i) => {
                // The controller learns the plans of the first table (it sets nothing over
                // it: the fleet's steps came with the table).
                let plans = dyegate::config::table::compile_rollout::plans(&i.loaded.model);
                let startup = dyegate::telemetry::labels::TriggerLabel::Startup;
                rollouts.over(&plans, &dyegate::routing::RouteTable::default(), startup);
                let start = StartAt {
                    version: Some(i.version),
                    trigger: i.trigger,
                    source: Some(i.status),
                };
                (i.loaded, start, i.read)
            }
            Err(e) => {
                eprintln!("dyegate: not started: {e}");
                return Err(NotStarted);
            }
        },
        // The rollouts kept in state_dir set their steps over the file's table before it is
        // compiled: a restarted or upgraded gateway serves the step it was on.
        None => match std::fs::read(&gw.routes_path)
            .map_err(|e| {
                let file = gw.routes_path.display().to_string();
                ConfigErrors(vec![dyegate::config::load::unreadable(&file, &e)])
            })
            .and_then(|bytes| {
                let nothing = dyegate::routing::RouteTable::default();
                dyegate::config::routes_from_text_over(
                    &gw.routes_path.display().to_string(),
                    bytes,
                    None,
                    gw.reload.max_file_bytes,
                    &mut |model| {
                        let startup = dyegate::telemetry::labels::TriggerLabel::Startup;
                        rollouts
                            .over(
                                &dyegate::config::table::compile_rollout::plans(model),
                                &nothing,
                                startup,
                            )
                            .0
                    },
                )
            }) {
            Ok(l) => (l, StartAt::default(), None),
            Err(e) => {
                print_errors(&e, false);
                eprintln!("dyegate: not started: invalid {}", gw.routes_path.display());
                return Err(NotStarted);
            }
        },
    };
    log::info!(
        "loaded {}: {} routes, {} upstreams",
        gw.etcd.as_ref().map_or_else(
            || gw.routes_path.display().to_string(),
            |e| format!("etcd:{}", e.prefix)
        ),
        loaded.0.routes,
        loaded.0.upstreams
    );
    Ok(loaded)
}

/// The certificates of the HTTPS listeners (`tls:`), loaded and counted in the metrics; an
/// unusable pair is located in gateway.yaml.
fn certificates(
    gw: &Gateway,
    config: Option<&Path>,
    metrics: &Metrics,
) -> Result<Option<Arc<Certificates>>, NotStarted> {
    let Some(tls) = &gw.tls else {
        return Ok(None);
    };
    match Certificates::load(tls, TlsMetrics::new()) {
        Ok(c) => {
            metrics.register(c.metrics().collectors(c.table()));
            Ok(Some(Arc::new(c)))
        }
        Err(issues) => {
            for e in locate(config, issues) {
                eprintln!("{e}");
            }
            eprintln!("dyegate: not started: unusable certificates in tls:");
            Err(NotStarted)
        }
    }
}

/// `dyegate VERSION listening: http on ADDR, ...` (or `taking over` on an upgrade).
fn log_listening(gw: &Gateway, addrs: &[(std::net::SocketAddr, Purpose)], opts: RunOptions) {
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

/// `dyegate rollback --fleet --to REVISION`: an etcd revision, not a local change.
fn rollback_fleet(admin: AdminArgs, to: Option<dyegate::reload::VersionId>) -> ExitCode {
    match to {
        Some(to) if to.is_local() => {
            eprintln!("dyegate rollback --fleet: --to {to} is a local change of one gateway, not an etcd revision (see dyegate versions)");
            ExitCode::from(2)
        }
        Some(to) => fleet_result(fleet::rollback(
            default_config(admin.config).as_deref(),
            to.version,
        )),
        None => {
            eprintln!("dyegate rollback --fleet: --to REVISION is required (see dyegate versions)");
            ExitCode::from(2)
        }
    }
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
        Command::Mirrors { admin, route } => {
            cli::commands::mirrors(&admin, route.as_deref()).into()
        }
        Command::Explain {
            admin,
            url,
            method,
            headers,
            cookies,
            query,
            ip,
            file,
        } => match cli::explain::request(url, method, &headers, &cookies, &query, ip.as_deref()) {
            Ok(req) => cli::explain::explain(&admin, file.as_deref(), &req).into(),
            Err(f) => f.report().into(),
        },
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
        } => rollback_fleet(admin, to),
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
            let log_level = dyegate::telemetry::log_level::LevelSource::install();
            dyegate::upgrade::binary::close_inherited_copy();
            run(config, RunOptions { daemon, upgrade }, log_level)
        }
    }
}
