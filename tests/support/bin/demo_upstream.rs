//! `demo-upstream`: the suite's test upstream as a standalone server, for the README demo and
//! the load benches. Answers every request with `x-upstream: <name>` and a JSON echo of what it
//! received (see `dyegate_suite::upstream`); speaks HTTP/1.1, h2c and WebSocket.
//!
//! ```text
//! cargo run -p dyegate-suite --bin demo-upstream -- --listen 127.0.0.1:9001 --name stable
//! curl -i 127.0.0.1:9001/hello
//! # fail 30% of requests (500), add 200 ms; then switch at run time:
//! demo-upstream --listen 127.0.0.1:9002 --name canary --fail-rate 0.3 --latency-ms 200
//! curl -X POST '127.0.0.1:9002/fail?rate=1'; curl -X POST '127.0.0.1:9002/latency?ms=0'
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use dyegate_suite::upstream::{serve_with_faults, DemoFaults, Recorder};

/// Command line of `demo-upstream`.
#[derive(Debug, Parser)]
#[command(about = "Test upstream: answers every request with a JSON echo naming itself")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// Name sent back in `x-upstream` and in the JSON body.
    #[arg(long, default_value = "demo")]
    name: String,
    /// Share of requests answered 500, from 0 to 1, spread evenly (0.3: 3 of every 10);
    /// changed at run time with `POST /fail?rate=R`.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Latency added to every answer, in milliseconds; changed with `POST /latency?ms=N`.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let faults = match DemoFaults::new(args.fail_rate, args.latency_ms) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("demo-upstream: --fail-rate: {e}");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "demo-upstream {:?} listening on {}",
        args.name,
        listener.local_addr()?
    );
    // Requests are not recorded: nobody reads them here, and a benchmark would grow memory.
    let recorder = Arc::new(Recorder::new(false));
    serve_with_faults(listener, Arc::from(args.name), recorder, Some(faults)).await;
    Ok(())
}
