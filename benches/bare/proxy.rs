//! The floor of the load comparison: a bare Pingora 0.9 proxy with no routing logic, shared by
//! the two `bare-proxy` binaries (benches/bare_proxy.rs, benches/bare_proxy_same.rs).
//!
//! Every request goes to the one `--upstream`, over HTTP/1.1 with Pingora's default upstream
//! connection pool (keep-alive). Whatever dyegate costs above this binary is the price of its own
//! work (config snapshot, dye tag, split, telemetry), not of Pingora. `benches/load/run.sh` runs it.

use std::net::SocketAddr;
use std::path::PathBuf;

use async_trait::async_trait;
use clap::Parser;
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

/// How a `bare-proxy` binary differs from Pingora's defaults. Each binary uses one variant.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
pub enum Build {
    /// Pingora's defaults: `ProxyHttp::init_downstream_modules` as shipped (a disabled
    /// response-compression module on every request), and whatever allocator the binary has.
    Defaults,
    /// As dyegate: no downstream modules (dyegate's `init_downstream_modules` is empty). The
    /// `bare-proxy-same` binary also has mimalloc as its global allocator, as dyegate does.
    SameAsDyegate,
}

/// Command line of `bare-proxy`.
#[derive(Debug, Parser)]
#[command(about = "Bare Pingora proxy: every request to one upstream (load comparison floor)")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:6188.
    #[arg(long)]
    listen: SocketAddr,
    /// The one upstream every request goes to, e.g. 127.0.0.1:8080 (plain HTTP/1.1).
    #[arg(long)]
    upstream: SocketAddr,
    /// Pingora worker threads for the proxy service.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Directory for Pingora's pid file and upgrade socket (never used here, but Pingora
    /// wants paths; the default would collide between concurrent runs).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    run_dir: PathBuf,
}

/// A proxy that always answers `upstream_peer` with the same peer.
struct BareProxy {
    peer: HttpPeer,
    build: Build,
}

#[async_trait]
impl ProxyHttp for BareProxy {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    /// Pingora's default (a disabled compression module), or nothing, as dyegate.
    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        if let Build::Defaults = self.build {
            modules.add_module(
                pingora::modules::http::compression::ResponseCompressionBuilder::enable(0),
            );
        }
    }

    /// Runs once per request after the request header is read: a clone of the prebuilt peer
    /// (plain text, no SNI), so no per-request parsing or lookup.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }
}

/// Parses the command line and runs the proxy until it is stopped.
pub fn main(build: Build) {
    let args = Args::parse();
    let pid = std::process::id();
    let conf = ServerConf {
        threads: args.threads,
        pid_file: path_string(args.run_dir.join(format!("bare-proxy-{pid}.pid"))),
        upgrade_sock: path_string(args.run_dir.join(format!("bare-proxy-{pid}.sock"))),
        ..ServerConf::default()
    };

    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let proxy = BareProxy {
        peer: HttpPeer::new(args.upstream, false, String::new()),
        build,
    };
    let mut service = http_proxy_service(&server.configuration, proxy);
    service.add_tcp(&args.listen.to_string());
    server.add_service(service);
    server.run_forever();
}

fn path_string(path: PathBuf) -> String {
    path.to_string_lossy().into_owned()
}
