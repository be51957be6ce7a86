//! `demo-upstream`: the suite's test upstream as a standalone server, for the README demo and
//! the load benches. Answers every request with `x-upstream: <name>` and a JSON echo of what it
//! received (see `dyegate_suite::upstream`); speaks HTTP/1.1, h2c and WebSocket.
//!
//! ```text
//! cargo run -p dyegate-suite --bin demo-upstream -- --listen 127.0.0.1:9001 --name stable
//! curl -i 127.0.0.1:9001/hello
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use dyegate_suite::upstream::{serve, Recorder};

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
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "demo-upstream {:?} listening on {}",
        args.name,
        listener.local_addr()?
    );
    // Requests are not recorded: nobody reads them here, and a benchmark would grow memory.
    let recorder = Arc::new(Recorder::new(false));
    serve(listener, Arc::from(args.name), recorder).await;
    Ok(())
}
